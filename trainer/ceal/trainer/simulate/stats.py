"""Statistics for summary.md: each arm's paired AUC gain over each baseline with a bootstrap confidence
interval and a Wilcoxon signed-rank p-value, the one-line list of significant claims, how well each
uncertainty predicts the test images' Dice error, and the issue's label-efficiency goal.

Pairing is by seed (same initial labelled set, same round-0 model). The bootstrap resamples the seeds' gains
(10,000 draws, seeded, percentile 95 % interval of their mean). The Wilcoxon test is one-sided (the arm's
AUC is greater) and exact for these small samples: with 5 seeds the smallest p it can give is 1/32 = 0.031,
so p < 0.05 needs every one of 5 seeds to favour the arm (two-sided it could never go below 0.0625).
A claim is called significant when p < 0.05 and the interval's lower end is above 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import stats

from ceal.trainer.worker.gate import GateSettings, bootstrap_interval

from .config import CEILING
from .report import Summary, arms, normalized_auc
from .results import ResultRow

__all__ = [
    "BASELINES",
    "Gain",
    "all_gains",
    "gain_lines",
    "goal_lines",
    "paired_gain",
    "predictor_lines",
    "significance_line",
    "statistics_lines",
]

# The arms every other arm is compared with: plain random, foreground-aware random, random with the
# unlabelled pool in training (separates the gain of querying from the gain of training).
BASELINES: Final = ("random", "random_foreground", "random+semi")
ALPHA: Final = 0.05
GOAL_SHARE: Final = 0.25  # of the pool, labelled by a human, to reach 98 % of the full-data Dice
_DRAWS: Final = 10_000


@dataclass(frozen=True)
class Gain:
    """An arm's AUC gain over a baseline, paired by seed: mean, 95 % bootstrap interval, one-sided p."""

    arm: str
    baseline: str
    seeds: int
    mean: float
    low: float
    high: float
    p: float

    @property
    def significant(self) -> bool:
        return self.p < ALPHA and self.low > 0


def paired_gain(arm: str, baseline: str, gains: list[float], seed: int = 0) -> Gain:
    """The Gain of per-seed `gains` (arm − baseline); p is NaN when all gains are 0 or fewer than 2 seeds."""
    g = np.asarray(gains, dtype=np.float64)
    if g.size == 0:
        raise ValueError(f"no seeds in common between {arm} and {baseline}")
    low, high = bootstrap_interval(g, GateSettings(confidence=0.95, resamples=_DRAWS, seed=seed))
    p = math.nan
    if g.size >= 2 and np.any(g != 0):
        p = float(stats.wilcoxon(g, alternative="greater", method="exact", zero_method="zsplit").pvalue)
    return Gain(arm, baseline, int(g.size), float(g.mean()), low, high, p)


def _aucs(rows: list[ResultRow]) -> dict[str, dict[int, float]]:
    return {
        name: {
            seed: normalized_auc([r.human_fraction for r in rs], [r.test_dice for r in rs]) for seed, rs in by.items()
        }
        for name, by in arms(rows).items()
        if name != CEILING
    }


def all_gains(rows: list[ResultRow]) -> list[Gain]:
    """Every (arm, baseline) pair present, the arm not being that baseline."""
    aucs = _aucs(rows)
    out = []
    for baseline in (b for b in BASELINES if b in aucs):
        for arm in sorted(aucs, key=lambda a: -float(np.mean(list(aucs[a].values())))):
            common = sorted(set(aucs[arm]) & set(aucs[baseline]))
            if arm != baseline and common:
                out.append(paired_gain(arm, baseline, [aucs[arm][s] - aucs[baseline][s] for s in common]))
    return out


def _p(p: float) -> str:
    return "—" if math.isnan(p) else f"{p:.3f}"


def gain_lines(gains: list[Gain]) -> list[str]:
    """A markdown table: arm, baseline, seeds, mean gain [95 % CI], one-sided Wilcoxon p, significant."""
    lines = [
        "| arm | over | seeds | AUC gain (mean) | 95 % bootstrap CI | Wilcoxon p (one-sided) | significant |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for g in gains:
        lines.append(
            f"| {g.arm} | {g.baseline} | {g.seeds} | {g.mean:+.4f} | [{g.low:+.4f}, {g.high:+.4f}] | {_p(g.p)} "
            f"| {'yes' if g.significant else 'no'} |"
        )
    return lines


def significance_line(gains: list[Gain]) -> str:
    """One line naming the significant claims (or that there are none)."""
    hits = [f"{g.arm} > {g.baseline} ({g.mean:+.4f}, p = {g.p:.3f})" for g in gains if g.significant]
    if not hits:
        return f"**Significant (p < {ALPHA}, CI above 0):** none of the {len(gains)} paired comparisons."
    return (
        f"**Significant (p < {ALPHA}, CI above 0):** "
        + "; ".join(hits)
        + f"; the other {len(gains) - len(hits)} are not."
    )


def predictor_lines(rows: list[ResultRow]) -> list[str]:
    """How well each image score predicts the image's Dice error on the test set: Spearman ρ over every
    (arm, seed, round) where measured, and how often the version ensemble beats MC mutual information."""
    measured = [r for r in rows if r.rho_ensemble > -2 and r.rho_mi > -2 and r.rho_entropy > -2]
    if not measured:
        return ["No round measured all three correlations (the ensemble needs two versions)."]
    cols = {
        "MC entropy": [r.rho_entropy for r in measured],
        "MC mutual information": [r.rho_mi for r in measured],
        "ensemble of versions (pairwise Dice disagreement)": [r.rho_ensemble for r in measured],
    }
    lines = ["| image score | Spearman ρ with Dice error (mean ± sd) | rounds |", "| --- | --- | --- |"]
    for name, values in cols.items():
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        lines.append(f"| {name} | {np.mean(values):+.3f} ± {sd:.3f} | {len(values)} |")
    better = sum(r.rho_ensemble > r.rho_mi for r in measured)
    test = paired_gain("ensemble ρ", "MI ρ", [r.rho_ensemble - r.rho_mi for r in measured])
    lines += [
        "",
        f"The ensemble's ρ is above MC mutual information's in {better} of {len(measured)} rounds (paired mean "
        f"{test.mean:+.3f}, 95 % CI [{test.low:+.3f}, {test.high:+.3f}], one-sided Wilcoxon p = {_p(test.p)}; "
        "rounds of one arm and seed are not independent, so read the p-value as indicative).",
    ]
    return lines


def goal_lines(summary: Summary, gains: list[Gain]) -> list[str]:
    """The issue's goal: the best arm reaches 98 % of the final full-data Dice with at most 25 % of the pool
    labelled by a human, and its AUC beats random and foreground-aware random with p < 0.05."""
    candidates = [s for s in summary.strategies if s.strategy not in ("random", "random_foreground")]
    if not candidates:
        return ["- Goal: needs an arm besides the random baselines."]
    best = candidates[0]  # best mean AUC
    labels = best.labels_to_final[0.98]
    limit = GOAL_SHARE * best.pool_size
    if labels is None:
        reach = f"does not reach 98 % of the final full-data Dice within {best.final_labels:.0f} labels"
    else:
        share = 100 * labels / best.pool_size
        reach = f"reaches 98 % of the final full-data Dice with {labels:.0f} labels ({share:.0f} % of the pool)"
    reach_ok = labels is not None and labels <= limit
    beats = {g.baseline: g for g in gains if g.arm == best.strategy and g.baseline in ("random", "random_foreground")}
    auc_ok = len(beats) == 2 and all(g.p < ALPHA for g in beats.values())
    vs = "; ".join(f"over {b}: {g.mean:+.4f}, p = {_p(g.p)}" for b, g in beats.items()) or "no baseline run"
    return [
        f"- Labels: the best arm, {best.strategy}, {reach}; the goal is at most {limit:.0f} "
        f"({100 * GOAL_SHARE:.0f} %): {'met' if reach_ok else 'missed'}.",
        f"- AUC: {vs} (goal: p < {ALPHA} over both): {'met' if auc_ok else 'missed'}.",
    ]


def statistics_lines(summary: Summary, rows: list[ResultRow]) -> list[str]:
    """The sections summary.md adds after the verdict."""
    gains = all_gains(rows)
    return [
        "## Paired AUC gains over each baseline",
        "",
        significance_line(gains),
        "",
        *gain_lines(gains),
        "",
        "## Which score predicts a test image's Dice error",
        "",
        *predictor_lines(rows),
        "",
        f"## Goal: 98 % of the full-data Dice with at most {100 * GOAL_SHARE:.0f} % of the pool, beating both "
        "random baselines",
        "",
        *goal_lines(summary, gains),
        "",
    ]
