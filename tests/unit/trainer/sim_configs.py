"""The tiny simulation recipe the simulation tests share: seconds to run, every code path taken."""

from __future__ import annotations

from ceal.trainer.simulate import SimConfig

TINY = SimConfig(
    strategies=("random", "ceal"),
    seeds=1,
    initial=4,
    per_round=3,
    rounds=2,
    steps=3,
    height=32,
    width=32,
    samples=3,
    test_fraction=0.2,
    base_filters=4,
    depth=2,
)
