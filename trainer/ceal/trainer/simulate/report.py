"""Label efficiency from results.csv: the ceiling, labels needed to reach it, areas under the curves, summary.md.

Definitions (the tests check this arithmetic on a hand-made table):

- ceiling: the full-data arm (the whole pool labelled, the same rounds of the same training). Its Dice rises
  over the rounds with training alone, so a strategy's round r is measured against the ceiling's round r,
  the full-data model with exactly the same training: the comparison is then about labels only. The final
  ceiling (its last round, mean over seeds) is reported too, and reaching a share of it is a second column.
- a strategy's curve: per round, the mean over seeds of human labels (x) and of test Dice (y); rounds that
  every seed finished.
- labels to reach q % of the ceiling: x at the first round r whose mean Dice ≥ q/100 · ceiling(r) (None:
  not reached in the run). The same round gives the annotation minutes.
- AUC: per seed, the trapezoidal area under Dice over the share of the pool a human labelled, divided by the
  width of that range: the mean Dice over the labelling budget (1.0 is perfect). Reported as mean ± sample
  standard deviation over seeds, and paired with random (same seed, same initial set) as a gain.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .config import CEILING, SimulationError
from .results import ResultRow

__all__ = [
    "TARGETS",
    "StrategySummary",
    "Summary",
    "arms",
    "ceiling_by_round",
    "first_reaching",
    "normalized_auc",
    "summarize",
    "summary_markdown",
    "verdict",
]

TARGETS = (0.95, 0.98)
Floats = npt.NDArray[np.float64]


def arms(rows: list[ResultRow]) -> dict[str, dict[int, list[ResultRow]]]:
    """strategy → seed → its rows by round."""
    out: dict[str, dict[int, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for row in sorted(rows, key=lambda r: (r.strategy, r.seed, r.round)):
        out[row.strategy][row.seed].append(row)
    return {s: dict(seeds) for s, seeds in out.items()}


def normalized_auc(x: Floats | list[float], y: Floats | list[float]) -> float:
    """Trapezoidal ∫ y dx over (R,) increasing x, divided by x[-1] − x[0]; y[0] for a single point."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.size == 0 or xs.shape != ys.shape:
        raise SimulationError(f"x and y must be non-empty and of equal length; got {xs.size} and {ys.size}")
    width = float(xs[-1] - xs[0])
    if xs.size == 1 or width <= 0:
        return float(ys.mean())
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2) / width)


def first_reaching(
    x: Floats | list[float], y: Floats | list[float], target: float | Floats | list[float]
) -> float | None:
    """x at the first point with y ≥ target (one number, or one per point), or None."""
    ys = np.asarray(y, dtype=np.float64)
    hits = np.flatnonzero(ys >= np.broadcast_to(np.asarray(target, dtype=np.float64), ys.shape))
    return float(np.asarray(x, dtype=np.float64)[hits[0]]) if hits.size else None


def _seed_mean(by_seed: dict[int, list[ResultRow]], value: str) -> Floats:
    """(R,) per-round mean over seeds of a row field, over the rounds every seed finished."""
    rounds = min(len(rows) for rows in by_seed.values())
    table = np.array([[float(getattr(r, value)) for r in rows[:rounds]] for rows in by_seed.values()])
    means: Floats = table.mean(axis=0)
    return means


def ceiling_by_round(rows: list[ResultRow]) -> Floats:
    """(R,) the full-data arm's test Dice per round, mean over seeds."""
    by_arm = arms(rows)
    if CEILING not in by_arm:
        raise SimulationError(f"results hold no {CEILING!r} rows, so there is no ceiling to measure against")
    return _seed_mean(by_arm[CEILING], "test_dice")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


@dataclass(frozen=True)
class StrategySummary:
    """One strategy over its seeds; labels/minutes are None when the mean curve never reached the target."""

    strategy: str
    seeds: int
    pool_size: int
    labels_to: dict[float, float | None]  # share of the same-round ceiling → human labels (seed mean)
    minutes_to: dict[float, float | None]  # → annotation minutes (seed mean)
    labels_to_final: dict[float, float | None]  # share of the final ceiling → human labels
    auc: tuple[float, float]  # mean, sd over seeds
    auc_gain: tuple[float, float] | None  # paired gain over random: mean, sd; None for random or without it
    final_dice: tuple[float, float]
    final_labels: float
    # Masks in the last round's training that no human drew (seed mean): CEAL's pseudo-labels, `+syn` pairs.
    final_pseudo: float = 0.0
    final_synthetic: float = 0.0
    seed_gains: dict[int, float] | None = None  # paired AUC gain over random, per seed; None as for auc_gain


@dataclass(frozen=True)
class Summary:
    ceiling: tuple[float, float]  # full-data Dice at the last round: mean, sd over seeds
    ceiling_by_round: tuple[float, ...]  # full-data Dice per round, seed mean
    strategies: list[StrategySummary]

    def get(self, strategy: str) -> StrategySummary | None:
        return next((s for s in self.strategies if s.strategy == strategy), None)


def _strategy_summary(
    name: str, by_seed: dict[int, list[ResultRow]], ceiling: Floats, random_auc: dict[int, float] | None
) -> StrategySummary:
    x, y, seconds = (_seed_mean(by_seed, v) for v in ("human_labels", "test_dice", "annotation_seconds"))
    same_round = ceiling[np.minimum(np.arange(y.size), ceiling.size - 1)]  # (R,) ceiling at each round
    aucs = {
        seed: normalized_auc([r.human_fraction for r in rows], [r.test_dice for r in rows])
        for seed, rows in by_seed.items()
    }
    gain, seed_gains = None, None
    if random_auc is not None and name != "random":
        seed_gains = {s: aucs[s] - random_auc[s] for s in sorted(aucs) if s in random_auc}
        gain = _mean_sd(list(seed_gains.values())) if seed_gains else None
    return StrategySummary(
        strategy=name,
        seeds=len(by_seed),
        pool_size=next(iter(by_seed.values()))[0].pool_size,
        labels_to={q: first_reaching(x, y, q * same_round) for q in TARGETS},
        minutes_to={q: first_reaching(seconds / 60, y, q * same_round) for q in TARGETS},
        labels_to_final={q: first_reaching(x, y, q * ceiling[-1]) for q in TARGETS},
        auc=_mean_sd(list(aucs.values())),
        auc_gain=gain,
        final_dice=_mean_sd([rows[-1].test_dice for rows in by_seed.values()]),
        final_labels=float(x[-1]),
        final_pseudo=float(_seed_mean(by_seed, "pseudo_labels")[-1]),
        final_synthetic=float(_seed_mean(by_seed, "synthetic_labels")[-1]),
        seed_gains=seed_gains or None,
    )


def summarize(rows: list[ResultRow]) -> Summary:
    """The label-efficiency summary of a results table (see the module docstring)."""
    ceiling = ceiling_by_round(rows)
    by_arm = arms(rows)
    random_auc = None
    if "random" in by_arm:
        random_auc = {
            seed: normalized_auc([r.human_fraction for r in rs], [r.test_dice for r in rs])
            for seed, rs in by_arm["random"].items()
        }
    strategies = [
        _strategy_summary(name, seeds, ceiling, random_auc) for name, seeds in by_arm.items() if name != CEILING
    ]
    strategies.sort(key=lambda s: -s.auc[0])
    final = _mean_sd([seed_rows[-1].test_dice for seed_rows in by_arm[CEILING].values()])
    return Summary(final, tuple(float(c) for c in ceiling), strategies)


def _labels(s: StrategySummary, q: float, *, final: bool = False) -> str:
    value = (s.labels_to_final if final else s.labels_to)[q]
    if value is None:
        return f"not reached (> {s.final_labels:.0f})"
    return f"{value:.0f} ({100 * value / s.pool_size:.0f} %)"


def verdict(summary: Summary) -> list[str]:
    """The issue's target, checked: the best strategy reaches 98 % of the ceiling with at most half the human
    labels random needs, and its AUC beats random's by more than the seed-to-seed spread."""
    rand = summary.get("random")
    others = [s for s in summary.strategies if s.strategy != "random"]
    if rand is None or not others:
        return ["The target compares with random: run random and at least one other strategy."]
    best = others[0]  # sorted by mean AUC
    need, got = rand.labels_to[0.98], best.labels_to[0.98]
    if got is None:
        half = f"{best.strategy} did not reach 98 % of the ceiling within the run"
        half_ok = False
    elif need is None:
        half_ok = got <= 0.5 * rand.final_labels
        half = (
            f"{best.strategy} reached 98 % with {got:.0f} labels; random did not within {rand.final_labels:.0f}, "
            f"so needs more than {rand.final_labels:.0f}"
        )
    else:
        half_ok = got <= 0.5 * need
        half = f"{best.strategy} reached 98 % with {got:.0f} human labels, random with {need:.0f}"
    spread = max(best.auc[1], rand.auc[1])
    margin = best.auc[0] - rand.auc[0]
    auc_ok = margin > spread
    return [
        f"- Labels: {half} → {'met' if half_ok else 'not met'} (target: at most half).",
        f"- AUC: {best.strategy} {best.auc[0]:.4f} vs random {rand.auc[0]:.4f}, a margin of {margin:+.4f} against a "
        f"seed-to-seed spread (larger sd) of {spread:.4f} → {'met' if auc_ok else 'not met'}.",
    ]


def _seed_gain_lines(summary: Summary) -> list[str]:
    """'Per-seed AUC gains over random' as one line per strategy (where the seed spread is read)."""
    lines = [
        f"- {s.strategy}: " + ", ".join(f"seed {k} {v:+.4f}" for k, v in s.seed_gains.items())
        for s in summary.strategies
        if s.seed_gains
    ]
    return ["Per-seed AUC gains over random (paired by seed):", "", *lines, ""] if lines else []


def summary_markdown(summary: Summary, extra: list[str] | None = None) -> str:
    """summary.md: the ceiling, one table row per strategy (best AUC first), the verdict, then `extra` lines
    (`stats.statistics_lines`: paired tests, failure prediction, the goal)."""
    c_mean, c_sd = summary.ceiling
    by_round = ", ".join(f"{c:.3f}" for c in summary.ceiling_by_round)
    lines = [
        "# Active-learning simulation: summary",
        "",
        f"Full-data ceiling (test Dice at the last round, mean ± sd over seeds): **{c_mean:.4f} ± {c_sd:.4f}**. "
        f"By round (the same training, every pool image labelled): {by_round}.",
        "",
        "| strategy | seeds | human labels to 95 % | to 98 % | to 98 % of the final ceiling "
        "| annotation min to 98 % | AUC (mean ± sd) | AUC gain vs random (paired) | final Dice | final labels "
        "| pseudo / synthetic, last round |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summary.strategies:
        minutes = s.minutes_to[0.98]
        gain = "—" if s.auc_gain is None else f"{s.auc_gain[0]:+.4f} ± {s.auc_gain[1]:.4f}"
        lines.append(
            f"| {s.strategy} | {s.seeds} | {_labels(s, 0.95)} | {_labels(s, 0.98)} | {_labels(s, 0.98, final=True)} "
            f"| {'—' if minutes is None else f'{minutes:.1f}'} | {s.auc[0]:.4f} ± {s.auc[1]:.4f} | {gain} | "
            f"{s.final_dice[0]:.4f} ± {s.final_dice[1]:.4f} | {s.final_labels:.0f} | "
            f"{s.final_pseudo:.0f} / {s.final_synthetic:.0f} |"
        )
    lines += [
        "",
        "Human labels to q %: the first round whose seed-mean Dice reaches q % of the full-data Dice of the same "
        "round (same training, all labels), with the share of the pool in brackets; the next column measures "
        "against the final ceiling instead. AUC: mean Dice over the share of the pool labelled by a human "
        "(trapezoids, divided by the range); the gain is paired by seed (same initial set). Pseudo / synthetic: "
        "masks no human drew in the last round's training (CEAL's pseudo-labels; a `+syn` arm's generated pairs, "
        "which never count as human labels), seed mean.",
        "",
        *_seed_gain_lines(summary),
        "## Target of the first pass (half of random's labels, AUC margin above the seed spread)",
        "",
        *verdict(summary),
        "",
        *(extra or []),
    ]
    return "\n".join(lines)
