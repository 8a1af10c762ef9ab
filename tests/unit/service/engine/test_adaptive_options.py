"""The adaptive-T request options: validation, the floor reaching the rule, and pool scoring's rule."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceal.service.engine.adaptive import DEFAULT_GROUPS, DEFAULT_MIN_SAMPLES
from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine, EngineLimits, PredictOptions, adaptive_rule, check_adaptive
from ceal.service.errors import InvalidInput
from ceal.service.pool.scoring import sampling_plan, scoring_rule
from ceal.service.servicers.segmentation_messages import decode_options
from ceal.v1 import segmentation_pb2 as pb
from tests.unit.service.engine.hand_model import SIZE, hand_model


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    running = Engine(DynamicBatcher(max_delay=0.0))
    yield running
    running.batcher.close()


@given(
    samples=st.integers(1, 100),
    floor=st.integers(0, 120),
    tolerance=st.sampled_from([0.0, 1e-3, 1.0, -1.0, math.inf, math.nan]),
)
def test_check_adaptive_accepts_exactly_the_valid_options(samples: int, floor: int, tolerance: float) -> None:
    opts = PredictOptions(samples=samples, adaptive_tolerance=tolerance, adaptive_min_samples=floor)
    tolerance_ok = math.isfinite(tolerance) and tolerance >= 0
    floor_ok = floor == 0 or (tolerance > 0 and DEFAULT_GROUPS <= floor <= samples)
    if tolerance_ok and floor_ok:
        check_adaptive(opts)
        rule = adaptive_rule(opts)
        assert (rule is None) == (tolerance == 0)
        if rule is not None:
            assert rule.min_samples == (floor or DEFAULT_MIN_SAMPLES)
    else:
        with pytest.raises(InvalidInput, match="adaptive_"):
            check_adaptive(opts)


@pytest.mark.parametrize(
    ("floor", "tolerance", "match"),
    [
        (3, 1e-3, r"between 4 \(the jackknife groups\) and samples \(20\)"),
        (21, 1e-3, r"between 4 .* got 21"),
        (8, 0.0, "set adaptive_tolerance > 0 or leave adaptive_min_samples at 0"),
    ],
)
def test_messages_say_what_to_change(engine: Engine, floor: int, tolerance: float, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        engine.check_options(PredictOptions(samples=20, adaptive_tolerance=tolerance, adaptive_min_samples=floor))


def test_proto_floor_reaches_the_rule() -> None:
    opts = decode_options(pb.PredictOptions(adaptive_tolerance=0.01, adaptive_min_samples=4), 20)
    rule = adaptive_rule(opts)
    assert rule is not None and rule.min_samples == 4
    unset = adaptive_rule(decode_options(pb.PredictOptions(adaptive_tolerance=0.01), 20))
    assert unset is not None and unset.min_samples == DEFAULT_MIN_SAMPLES


@pytest.mark.parametrize(("floor", "expected"), [(4, 4), (12, 12), (10, 12), (0, 8)])
def test_engine_stops_at_the_floor_on_a_confident_model(engine: Engine, floor: int, expected: int) -> None:
    confident = hand_model(out_weight=0.01, out_bias=12.0)  # mutual information ≈ 0: stops at the first check
    pixels = (np.random.default_rng(0).random((SIZE, SIZE)) * 255).astype(np.uint8)
    opts = PredictOptions(samples=40, seed=3, adaptive_tolerance=1e-4, adaptive_min_samples=floor)
    assert engine.predict(confident, pixels, opts).samples == expected  # checks come after chunks of 4


def test_pool_scoring_rule_is_mean_mutual_information() -> None:
    rule = scoring_rule(20, 0.002, 4)
    assert rule is not None
    assert (rule.measure, rule.reduction, rule.tolerance, rule.min_samples) == ("mutual_information", "mean", 0.002, 4)
    assert scoring_rule(20, 0.0, 0) is None  # fixed T
    with pytest.raises(InvalidInput, match="between 4"):
        scoring_rule(6, 0.002, 8)
    with pytest.raises(InvalidInput, match="adaptive_tolerance must be >= 0"):
        scoring_rule(20, -1.0, 0)


def test_the_sampling_plan_is_checked_once_at_the_edge() -> None:
    plan = sampling_plan(EngineLimits(max_samples=30), 20, adaptive_tolerance=0.002, adaptive_min_samples=4, seed=7)
    assert (plan.samples, plan.seed, plan.deadline) == (20, 7, None)
    assert plan.rule == scoring_rule(20, 0.002, 4)
    with pytest.raises(InvalidInput, match="samples must be between 1 and 30, got 31"):
        sampling_plan(EngineLimits(max_samples=30), 31)
    with pytest.raises(InvalidInput, match="between 4"):
        sampling_plan(EngineLimits(), 6, adaptive_tolerance=0.002, adaptive_min_samples=8)
