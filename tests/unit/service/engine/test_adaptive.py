"""Adaptive T: stops early when the score is precise, never passes T_max, same seed → same samples.

The models are built by hand (`hand_model`), so the tests need no torch and no training.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.engine.adaptive import AdaptiveRule, run_samples, sample_adaptive
from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine, PredictOptions
from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import InvalidInput
from tests.unit.service.engine.hand_model import SIZE, hand_model


@pytest.fixture(scope="module")
def confident() -> LoadedModel:
    return hand_model(out_weight=0.01, out_bias=12.0)  # p ≈ 1 whatever the mask: mutual information ≈ 0


@pytest.fixture(scope="module")
def uncertain() -> LoadedModel:
    return hand_model(out_weight=1.0, out_bias=-4.0)  # the mask moves p across 0.5


def _features(model: LoadedModel, seed: int = 0) -> dict[str, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(1, 1, SIZE, SIZE)).astype(np.float32)
    return model.run_prefix(x)


def test_stops_early_on_a_confidenthand_model(confident: LoadedModel) -> None:
    rule = AdaptiveRule(tolerance=1e-4)
    out = sample_adaptive(confident, _features(confident), 40, np.random.default_rng(1), rule)
    assert out.samples == rule.min_samples
    assert out.standard_error <= rule.tolerance


def test_keeps_sampling_to_t_max_while_the_score_stays_noisy(uncertain: LoadedModel) -> None:
    out = sample_adaptive(uncertain, _features(uncertain), 20, np.random.default_rng(1), AdaptiveRule(1e-9))
    assert out.samples == 20
    assert out.standard_error > 1e-9


@settings(max_examples=25, deadline=None)
@given(t_max=st.integers(1, 30), chunk=st.integers(1, 7), tolerance=st.sampled_from([1e-9, 1e-3, 1.0]))
def test_never_exceeds_t_max(uncertain: LoadedModel, t_max: int, chunk: int, tolerance: float) -> None:
    rule = AdaptiveRule(tolerance, chunk=chunk, groups=2, min_samples=2)
    out = sample_adaptive(uncertain, _features(uncertain), t_max, np.random.default_rng(0), rule)
    assert 1 <= out.samples <= t_max
    assert out.probabilities.shape[1:] == (1, SIZE, SIZE)


def test_same_seed_same_samples_and_stopping_point(uncertain: LoadedModel) -> None:
    rule = AdaptiveRule(tolerance=2e-3)
    runs = [sample_adaptive(uncertain, _features(uncertain), 40, np.random.default_rng(7), rule) for _ in range(2)]
    assert runs[0].samples == runs[1].samples
    np.testing.assert_array_equal(runs[0].probabilities, runs[1].probabilities)
    other = sample_adaptive(uncertain, _features(uncertain), 40, np.random.default_rng(8), rule)
    assert not np.array_equal(other.probabilities[:4], runs[0].probabilities[:4])


def test_without_a_rule_draws_exactly_t(uncertain: LoadedModel) -> None:
    probs = run_samples(uncertain, _features(uncertain), 6, np.random.default_rng(0), None)
    assert probs.shape == (1, 6, 1, SIZE, SIZE)


def test_engine_option_reports_the_samples_drawn(confident: LoadedModel, uncertain: LoadedModel) -> None:
    engine = Engine(DynamicBatcher(max_delay=0.0))
    try:
        pixels = (np.random.default_rng(0).random((SIZE, SIZE)) * 255).astype(np.uint8)
        opts = PredictOptions(samples=40, seed=3, adaptive_tolerance=1e-4)
        assert engine.predict(confident, pixels, opts).samples == 8
        assert engine.predict(uncertain, pixels, PredictOptions(samples=12, seed=3)).samples == 12
        with pytest.raises(InvalidInput, match="adaptive_tolerance must be >= 0"):
            engine.predict(confident, pixels, PredictOptions(samples=20, adaptive_tolerance=-1.0))
    finally:
        engine.batcher.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tolerance": 0.0}, "positive"),
        ({"tolerance": 1.0, "groups": 1}, "groups >= 2"),
        ({"tolerance": 1.0, "measure": "dice"}, "adaptive score"),
    ],
)
def test_rule_refuses_what_cannot_work(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        AdaptiveRule(**kwargs)  # type: ignore[arg-type]


def test_refuses_features_of_several_images(uncertain: LoadedModel) -> None:
    x = np.zeros((2, 1, SIZE, SIZE), np.float32)
    with pytest.raises(InvalidInput, match="one image"):
        sample_adaptive(uncertain, uncertain.run_prefix(x), 8, np.random.default_rng(0), AdaptiveRule(1.0))


def test_hand_model_keeps_its_dropout() -> None:
    model = hand_model(1.0, 0.0)
    assert [s.ratio for s in model.split.sites] == [0.5]
    assert onnx.load_from_string(model.split.suffix).graph.node  # the split found a suffix to sample


def test_proto_option_reaches_the_engine_rule() -> None:
    from ceal.service.engine.core import adaptive_rule
    from ceal.service.servicers.segmentation_messages import decode_options
    from ceal.v1 import segmentation_pb2 as pb

    opts = decode_options(pb.PredictOptions(adaptive_tolerance=0.002, score_measure=pb.UNCERTAINTY_MEASURE_ENTROPY), 20)
    rule = adaptive_rule(opts)
    assert rule is not None and rule.tolerance == pytest.approx(0.002) and rule.measure == "entropy"
    assert adaptive_rule(decode_options(pb.PredictOptions(), 20)) is None  # unset: fixed T
