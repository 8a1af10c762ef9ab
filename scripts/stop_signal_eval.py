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


def one_round_ahead(points: list[tuple[int, float]]) -> list[tuple[float, float, float, float]]:
    """(predicted gain, low, high, observed gain) for each round that has MIN_POINTS rounds before it."""
    rows = []
    n = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1] for p in points], dtype=np.float64)
    for k in range(MIN_POINTS - 1, len(points) - 1):
        fit = replicates(n[: k + 1], y[: k + 1], np.array([n[k], n[k + 1]]), seed=k)
        if fit is None:
            continue
        best, draws, _ = fit
        gains = draws[:, 1] - draws[:, 0]
        rows.append(
            (
                float(best[1] - best[0]),
                float(np.quantile(gains, 0.05)),
                float(np.quantile(gains, 0.95)),
                float(y[k + 1] - y[k]),
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
        for (pred, low, high, obs), (labels, _) in zip(rows, points[MIN_POINTS:], strict=False):
            print(
                f"{strategy:8s} seed {seed} → {labels:4d} labels: predicted {pred:+.4f} [{low:+.4f}, {high:+.4f}]  observed {obs:+.4f}"
            )
    if not every:
        print("no curve has enough rounds")
        return 1
    a = np.array(every)
    err = a[:, 0] - a[:, 3]
    inside = (a[:, 1] <= a[:, 3]) & (a[:, 3] <= a[:, 2])
    print(
        f"\n{len(a)} one-round-ahead predictions: mean absolute error {np.abs(err).mean():.4f} Dice, "
        f"median {np.median(np.abs(err)):.4f}, bias {err.mean():+.4f}; observed gain mean {a[:, 3].mean():+.4f} "
        f"(|observed| mean {np.abs(a[:, 3]).mean():.4f}); 90 % interval covers {inside.mean():.0%} of them"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
