"""The stop signal checked one round ahead on the simulation's learning curves (`ceal simulate` results.csv).

For every (strategy, seed) curve and every round k with at least 3 earlier points, the inverse power law is
fitted to rounds 0..k (human labels → test Dice) exactly as `ceal trainer` fits it, and the gain to round
k + 1 is predicted with its 90 % bootstrap interval; the observed gain is Dice(k + 1) - Dice(k).

    python scripts/stop_signal_eval.py runs/simstop/results.csv
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from ceal.trainer.worker.curve import MIN_POINTS, replicates


def curves(path: Path) -> dict[tuple[str, str], list[tuple[int, float]]]:
    out: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    with open(path) as fh:
        for row in csv.DictReader(fh):
            if row["strategy"] == "full_data":
                continue  # the ceiling: every label from round 0, no curve in labels
            out[(row["strategy"], row["seed"])].append((int(row["human_labels"]), float(row["test_dice"])))
    return {k: sorted(v) for k, v in out.items()}


def one_round_ahead(points: list[tuple[int, float]]) -> list[tuple[float, ...]]:
    """Per round with MIN_POINTS rounds before it: (predicted gain, its 90 % interval low, high, the 90 %
    prediction interval low, high (adds the curve's own round-to-round noise, from the fit's residuals),
    observed gain, the previous round's observed gain)."""
    rows: list[tuple[float, ...]] = []
    n = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1] for p in points], dtype=np.float64)
    rng = np.random.default_rng(0)
    for k in range(MIN_POINTS - 1, len(points) - 1):
        at = np.concatenate([n[: k + 1], [n[k], n[k + 1]]])
        fit = replicates(n[: k + 1], y[: k + 1], at, seed=k)
        if fit is None:
            continue
        best, draws, _ = fit
        residual_sd = float(np.sqrt(np.sum((y[: k + 1] - best[: k + 1]) ** 2) / max(1, k + 1 - 3)))
        gains = draws[:, -1] - draws[:, -2]
        noisy = gains + rng.normal(0.0, np.sqrt(2.0) * residual_sd, len(gains))
        rows.append(
            (
                float(best[-1] - best[-2]),
                float(np.quantile(gains, 0.05)),
                float(np.quantile(gains, 0.95)),
                float(np.quantile(noisy, 0.05)),
                float(np.quantile(noisy, 0.95)),
                float(y[k + 1] - y[k]),
                float(y[k] - y[k - 1]),
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="results.csv of a `ceal simulate` run")
    args = parser.parse_args()
    every = []
    for (strategy, seed), points in sorted(curves(args.results).items()):
        rows = one_round_ahead(points)
        every += rows
        for (pred, low, high, p_low, p_high, obs, _), (labels, _) in zip(rows, points[MIN_POINTS:], strict=False):
            print(
                f"{strategy:8s} seed {seed} → {labels:4d} labels: predicted {pred:+.4f} [{low:+.4f}, {high:+.4f}] "
                f"(prediction interval [{p_low:+.4f}, {p_high:+.4f}])  observed {obs:+.4f}"
            )
    if not every:
        print("no curve has enough rounds")
        return 1
    a = np.array(every)
    err = a[:, 0] - a[:, 5]
    covered = ((a[:, 1] <= a[:, 5]) & (a[:, 5] <= a[:, 2])).mean()
    covered_pi = ((a[:, 3] <= a[:, 5]) & (a[:, 5] <= a[:, 4])).mean()
    print(
        f"\n{len(a)} one-round-ahead predictions of the gain: mean absolute error {np.abs(err).mean():.4f} Dice "
        f"(median {np.median(np.abs(err)):.4f}, bias {err.mean():+.4f}); baselines: predicting no gain "
        f"{np.abs(a[:, 5]).mean():.4f}, repeating the previous gain {np.abs(a[:, 6] - a[:, 5]).mean():.4f}. "
        f"Observed gains cover: the expected gain's 90 % interval {covered:.0%}, the 90 % prediction interval "
        f"{covered_pi:.0%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
