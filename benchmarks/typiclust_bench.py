"""TypiClust at scale: k-means++ seeding as scipy does it against `kmeans_plus_plus` (same seeds), side by side,
then the whole `typiclust_selection` on a large pool.

    .venv/bin/python benchmarks/typiclust_bench.py [--rows 5000] [--clusters 200] [--pool 100000]

Seeding: `--rows` descriptors of 64 dimensions, `--clusters` seeds, median of `--repeats`; exits 1 when the two
draw different seeds. Selection: a pool of `--pool` descriptors, 1 % labelled, k = 20 (500 clusters, fitted on
20,000 rows), one call.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from scipy.cluster.vq import _kpp  # scipy's own k-means++ seeding, what kmeans2(minit="++") calls

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, median, table, timed
from benchmarks.ranking_bench import make_table
from ceal.service.selection import ScoreTable, typiclust_selection
from ceal.service.selection.typiclust import kmeans_plus_plus

DIMS = 64


def _pool(rows: int) -> ScoreTable:
    """ranking_bench's pool of `rows` scored images, with random 64-dimensional descriptors."""
    descriptors = np.random.default_rng(0).normal(size=(rows, DIMS)).astype(np.float32)
    return dataclasses.replace(make_table(rows), descriptors=descriptors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"# typiclust bench: seeding {args.clusters} of {args.rows:,} × {DIMS}; a pool of {args.pool:,}; {machine()}")
    data = np.random.default_rng(1).normal(size=(args.rows, DIMS))
    same = np.array_equal(
        _kpp(data, args.clusters, np.random.default_rng(2), np),
        kmeans_plus_plus(data, args.clusters, np.random.default_rng(2)),
    )
    scipy_s = median(timed(lambda: _kpp(data, args.clusters, np.random.default_rng(2), np), args.repeats))
    ours_s = median(timed(lambda: kmeans_plus_plus(data, args.clusters, np.random.default_rng(2)), args.repeats))
    print(
        table(
            ("k-means++ seeding", "median s"),
            [("scipy (_kpp, what kmeans2 minit='++' runs)", round(scipy_s, 2)), ("kmeans_plus_plus", round(ours_s, 3))],
        )
    )
    print(f"speed-up {scipy_s / ours_s:.0f}×; same seeds: {same}")
    pool = _pool(args.pool)
    (select_s,) = timed(lambda: typiclust_selection(pool, 20, exclude=set(range(0, args.pool, 100))), 1)
    print(f"typiclust_selection, {args.pool:,} images, 1 % labelled, k = 20: {select_s:.1f} s")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
