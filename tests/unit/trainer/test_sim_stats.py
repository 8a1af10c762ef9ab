"""summary.md's statistics on hand-made tables: paired gains with CI and Wilcoxon p, failure prediction, goal."""

from __future__ import annotations

import math

import pytest

from ceal.trainer.simulate import CEILING, ResultRow, summarize
from ceal.trainer.simulate.report import summary_markdown
from ceal.trainer.simulate.stats import all_gains, paired_gain, predictor_lines, significance_line, statistics_lines


def test_five_positive_seeds_give_the_smallest_one_sided_p() -> None:
    g = paired_gain("bald", "random", [0.01, 0.02, 0.015, 0.03, 0.005])
    assert g.p == pytest.approx(1 / 32) and g.significant
    assert g.low > 0 and g.low <= g.mean <= g.high and g.mean == pytest.approx(0.016)
    mixed = paired_gain("bald", "random", [0.01, -0.02, 0.015, 0.03, 0.005])
    assert mixed.p > 0.05 and not mixed.significant
    assert math.isnan(paired_gain("a", "b", [0.01]).p)  # one seed: no test


def _arm(name: str, seed: int, dice: list[float], pool: int = 100, **extra: float) -> list[ResultRow]:
    labels = [100] * len(dice) if name == CEILING else [10 * (r + 1) for r in range(len(dice))]
    return [
        ResultRow(name, seed, r, n, 0, 30.0 * n, d, pool, **extra)
        for r, (n, d) in enumerate(zip(labels, dice, strict=True))
    ]  # type: ignore[arg-type]


def test_summary_names_the_significant_claims_and_the_goal() -> None:
    rows: list[ResultRow] = []
    for seed in range(5):
        bump = 0.01 * seed
        rows += _arm(CEILING, seed, [0.8, 0.9, 1.0])
        rows += _arm("random", seed, [0.5, 0.6, 0.7 + bump])
        rows += _arm("random_foreground", seed, [0.5, 0.65, 0.75 - bump])
        rows += _arm("bald", seed, [0.5, 0.99, 0.99], rho_entropy=0.3, rho_mi=0.2, rho_ensemble=0.5)
    summary = summarize(rows)
    gains = all_gains(rows)
    # foreground-aware random also beats random on every seed here (by 0.025 + d/4, d = 0.05 … −0.03)
    assert {(g.arm, g.baseline) for g in gains if g.significant} == {
        ("bald", "random"),
        ("bald", "random_foreground"),
        ("random_foreground", "random"),
    }
    line = significance_line(gains)
    assert line.startswith("**Significant") and "bald > random (" in line
    text = summary_markdown(summary, statistics_lines(summary, rows))
    # bald reaches 0.99 ≥ 0.98 · 1.0 at 20 labels (20 % of the pool ≤ 25 %) and beats both baselines on every seed
    assert "the best arm, bald, reaches 98 % of the final full-data Dice with 20 labels (20 % of the pool)" in text
    assert text.count(": met.") == 2 and "| bald | random | 5 |" in text
    assert "| ensemble of versions (pairwise Dice disagreement) | +0.500 ± 0.000 | 15 |" in text


def test_failure_prediction_needs_all_three_scores() -> None:
    rows = _arm("random", 0, [0.5, 0.6])  # rho fields at the not-measured sentinel
    assert predictor_lines(rows)[0].startswith("No round measured")
