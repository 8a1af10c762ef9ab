"""Monte-Carlo uncertainty maths: formulas written out here independently, and their properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service import uncertainty as u
from ceal.service.errors import InvalidInput

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
SETTINGS = settings(deadline=None, max_examples=60)


def _stack(seed: int, *, t: int, c: int, h: int, w: int, sharpness: float = 1.0) -> F32:
    """Random MC samples (T, C, H, W): sigmoid for C == 1, else softmax; a large sharpness saturates."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(t, c, h, w)) * sharpness
    if c == 1:
        return (0.5 + 0.5 * np.tanh(logits / 2)).astype(np.float32)  # the sigmoid, without overflow
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(exps / exps.sum(axis=1, keepdims=True), dtype=np.float32)


ANY_CHANNELS = st.integers(1, 4)


def stacks(channels: st.SearchStrategy[int] = ANY_CHANNELS) -> st.SearchStrategy[F32]:
    return st.builds(
        _stack,
        seed=st.integers(0, 2**32 - 1),
        t=st.integers(1, 6),
        c=channels,
        h=st.integers(1, 5),
        w=st.integers(1, 5),
        sharpness=st.sampled_from([0.05, 1.0, 4.0, 200.0]),
    )


def _classes(samples: npt.NDArray[np.floating]) -> F64:
    """(T, C, H, W) -> (T, K, H, W), written out: one sigmoid channel p is the two classes 1 - p and p."""
    s = samples.astype(np.float64)
    return np.concatenate([1 - s, s], axis=1) if s.shape[1] == 1 else s


def _oracle_entropy(probs: F64) -> F64:
    """(K, H, W) -> (H, W), pixel by pixel with math.log and the 0·log 0 = 0 convention."""
    out = np.zeros(probs.shape[1:])
    for i, j in itertools.product(range(probs.shape[1]), range(probs.shape[2])):
        out[i, j] = -sum(p * math.log(p) for p in probs[:, i, j] if p > 0)
    return out


def _oracle_maps(samples: F32) -> dict[str, F64]:
    probs = _classes(samples)  # (T, K, H, W)
    predictive = _oracle_entropy(probs.mean(axis=0))
    expected = np.mean([_oracle_entropy(p) for p in probs], axis=0)
    if samples.shape[1] == 1:
        variance = np.var(samples[:, 0].astype(np.float64), axis=0)
    else:
        variance = np.mean([np.var(samples[:, k].astype(np.float64), axis=0) for k in range(samples.shape[1])], 0)
    return {"entropy": predictive, "expected": expected, "mi": predictive - expected, "variance": variance}


@SETTINGS
@given(stacks())
def test_maps_match_the_written_out_formulas(samples: F32) -> None:
    oracle = _oracle_maps(samples)
    mean = u.class_probabilities(samples).mean(axis=0)
    np.testing.assert_allclose(u.predictive_entropy(mean), oracle["entropy"], atol=1e-6)
    np.testing.assert_allclose(u.expected_entropy(samples), oracle["expected"], atol=1e-6)
    np.testing.assert_allclose(u.mutual_information(samples), np.maximum(oracle["mi"], 0), atol=1e-6)
    np.testing.assert_allclose(u.sample_variance(samples), oracle["variance"], atol=1e-7)
    stats = u.summarize(samples)
    assert stats.samples == samples.shape[0]
    assert stats.mean.shape == samples.shape[1:] and stats.mean.dtype == np.float32
    for name in ("entropy", "mutual_information", "variance"):
        assert stats.measure(name).dtype == np.float32 and stats.measure(name).shape == samples.shape[2:]
    np.testing.assert_allclose(stats.mean, samples.astype(np.float64).mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(stats.entropy, oracle["entropy"], atol=1e-5)
    np.testing.assert_allclose(stats.mutual_information, np.maximum(oracle["mi"], 0), atol=1e-5)
    np.testing.assert_allclose(stats.variance, oracle["variance"], atol=1e-6)


@SETTINGS
@given(stacks())
def test_zero_le_mutual_information_le_entropy_le_log_k(samples: F32) -> None:
    stats = u.summarize(samples)
    log_k = math.log(stats.num_classes)
    assert stats.num_classes == (2 if samples.shape[1] == 1 else samples.shape[1])
    assert np.all(stats.mutual_information >= 0)
    assert np.all(stats.mutual_information <= stats.entropy + 1e-6)
    assert np.all(stats.entropy >= 0) and np.all(stats.entropy <= log_k + 1e-6)
    assert 0.0 <= u.confidence(stats) <= 1.0
    mi = u.mutual_information(samples)
    assert np.all(mi >= 0)
    assert np.all(mi <= u.predictive_entropy(u.class_probabilities(samples).mean(axis=0)) + 1e-9)


@SETTINGS
@given(stacks(), st.integers(1, 7))
def test_mutual_information_and_variance_vanish_when_all_samples_agree(samples: F32, t: int) -> None:
    agreeing = np.repeat(samples[:1], t, axis=0)
    stats = u.summarize(agreeing)
    np.testing.assert_allclose(stats.mutual_information, 0.0, atol=1e-6)
    np.testing.assert_allclose(stats.variance, 0.0, atol=1e-7)
    np.testing.assert_allclose(u.mutual_information(agreeing), 0.0, atol=1e-9)
    np.testing.assert_allclose(stats.entropy, _oracle_entropy(_classes(samples[:1])[0]), atol=1e-5)


def test_binary_entropy_peaks_at_one_half() -> None:
    p = np.linspace(0.0, 1.0, 101).reshape(1, 1, 101)
    entropy = u.predictive_entropy(p)[0]
    assert int(np.argmax(entropy)) == 50
    assert entropy[50] == pytest.approx(math.log(2))
    assert entropy[0] == 0.0 and entropy[-1] == 0.0  # 0·log 0 is 0, not NaN
    np.testing.assert_allclose(entropy, entropy[::-1], atol=1e-12)
    assert np.all(np.diff(entropy[:51]) > 0)
    uniform = np.full((5, 2, 3), 0.2)
    np.testing.assert_allclose(u.predictive_entropy(uniform), math.log(5))


@SETTINGS
@given(stacks(channels=st.just(1)))
def test_sigmoid_channel_equals_explicit_two_class_softmax(samples: F32) -> None:
    two_class = np.concatenate([1 - samples, samples], axis=1)
    np.testing.assert_allclose(u.class_probabilities(samples), u.class_probabilities(two_class), atol=1e-7)
    one, two = u.summarize(samples), u.summarize(two_class)
    np.testing.assert_allclose(one.mean[0], two.mean[1], atol=1e-6)
    for name in ("entropy", "mutual_information", "variance"):
        np.testing.assert_allclose(one.measure(name), two.measure(name), atol=1e-6)
    np.testing.assert_allclose(u.sample_variance(samples), u.sample_variance(two_class), atol=1e-7)
    assert u.confidence(one) == pytest.approx(u.confidence(two), abs=1e-6)
    # The masks of the mean agree except on exact ties p̄ = 0.5, where float rounding may tip either way.
    mask_one, mask_two = u.mean_label_map(one), u.mean_label_map(two)
    assert np.all((mask_one == mask_two) | (np.abs(one.mean[0] - 0.5) < 1e-6))
    ones, twos = u.image_scores(one), u.image_scores(two)
    assert ones.keys() == twos.keys()
    for key in ones:
        if key[1] != "boundary_weighted" or np.array_equal(mask_one, mask_two):
            assert ones[key] == pytest.approx(twos[key], rel=1e-4, abs=1e-5), key


@st.composite
def chunked(draw: st.DrawFn) -> tuple[F32, list[int], int]:
    samples = draw(stacks())
    cuts = sorted(draw(st.lists(st.integers(1, max(1, samples.shape[0] - 1)), max_size=4)))
    return samples, cuts, draw(st.integers(1, 4))


@SETTINGS
@given(chunked())
def test_batch_equals_streaming_for_any_chunking(case: tuple[F32, list[int], int]) -> None:
    samples, cuts, groups = case
    accumulator = u.MCAccumulator(groups=groups)
    for chunk in np.split(samples, cuts, axis=0):
        if chunk.shape[0]:
            accumulator.add(chunk)
    assert accumulator.samples == samples.shape[0]
    streamed, batch = accumulator.result(), u.summarize(samples)
    assert streamed.samples == batch.samples
    for name in ("mean", "entropy", "mutual_information", "variance"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(batch, name), atol=1e-6)


def test_accumulator_rejects_mismatched_chunks_and_empty_results() -> None:
    accumulator = u.MCAccumulator()
    with pytest.raises(InvalidInput, match="no samples"):
        accumulator.result()
    accumulator.add(_stack(0, t=2, c=2, h=3, w=3))
    with pytest.raises(InvalidInput, match="one accumulator per image"):
        accumulator.add(_stack(0, t=2, c=2, h=3, w=4))
    with pytest.raises(InvalidInput, match="groups"):
        u.MCAccumulator(groups=0)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.full((2, 1, 2, 2), np.nan, dtype=np.float32), "non-finite"),
        (np.full((2, 1, 2, 2), np.inf, dtype=np.float32), "non-finite"),
        (np.full((2, 1, 2, 2), 1.01, dtype=np.float32), "outside \\[0, 1\\]"),
        (np.full((2, 1, 2, 2), -0.01, dtype=np.float32), "outside \\[0, 1\\]"),
        (np.full((2, 3, 2, 2), 0.5, dtype=np.float32), "sum to 1"),
        (np.zeros((2, 2, 2), dtype=np.float32), "shape \\(T, C, H, W\\)"),
        (np.zeros((0, 1, 2, 2), dtype=np.float32), "shape \\(T, C, H, W\\)"),
        (np.full((1, 1, 2, 2), "x"), "real probabilities"),
    ],
)
def test_bad_samples_raise_value_errors_that_name_the_problem(bad: npt.NDArray[np.generic], message: str) -> None:
    for function in (u.summarize, u.mutual_information, u.sample_variance, u.MCAccumulator().add):
        with pytest.raises(ValueError, match=message):
            function(bad)


def test_rounding_just_outside_zero_one_is_tolerated_and_clipped() -> None:
    samples = np.array([[[[1.00005, -0.00005]]]], dtype=np.float64)  # (1, 1, 1, 2)
    stats = u.summarize(samples)
    np.testing.assert_array_equal(stats.mean, [[[1.0, 0.0]]])
    np.testing.assert_array_equal(stats.entropy, [[0.0, 0.0]])
    with pytest.raises(InvalidInput, match="outside"):
        u.predictive_entropy(np.full((2, 1, 1), 1.5))


def test_confidence_is_one_for_certain_and_zero_for_uniform_predictions() -> None:
    certain = np.zeros((3, 4, 2, 2), dtype=np.float32)
    certain[:, 2] = 1.0
    assert u.confidence(u.summarize(certain)) == 1.0
    assert u.confidence(u.summarize(np.full((3, 4, 2, 2), 0.25, dtype=np.float32))) == pytest.approx(0.0)
    assert u.confidence(u.summarize(np.full((3, 1, 2, 2), 0.5, dtype=np.float32))) == pytest.approx(0.0)


def test_image_scores_has_every_measure_and_reduction() -> None:
    stats = u.summarize(_stack(3, t=5, c=3, h=6, w=7))
    scores = u.image_scores(stats, top_k_percent=10.0)
    assert set(scores) == set(itertools.product(u.MEASURES, u.REDUCTIONS))
    assert len(scores) == 12
    assert scores["entropy", "mean"] == pytest.approx(float(stats.entropy.astype(np.float64).mean()))
    assert scores["variance", "sum"] == pytest.approx(float(stats.variance.astype(np.float64).sum()))
    top = np.sort(stats.mutual_information.ravel().astype(np.float64))[-5:]  # ceil(10% of 42) = 5
    assert scores["mutual_information", "top_k_mean"] == pytest.approx(float(top.mean()))
    for key, value in scores.items():
        assert u.image_score(stats, *key, top_k_percent=10.0) == pytest.approx(value)


def test_boundary_weighted_score_uses_the_mask_of_the_mean() -> None:
    # A disc of foreground, certain everywhere except a ring of doubt along its border.
    yy, xx = np.mgrid[:21, :21]
    radius = np.hypot(yy - 10, xx - 10)
    p = np.where(radius < 6, 1.0, 0.0)
    p = np.where(np.abs(radius - 6) < 1, 0.5, p)
    samples = np.stack([p, p]).reshape(2, 1, 21, 21)
    stats = u.summarize(samples)
    np.testing.assert_array_equal(u.mean_label_map(stats), radius <= 5)
    scores = u.image_scores(stats, boundary_sigma=2.0)
    assert scores["entropy", "boundary_weighted"] > 2 * scores["entropy", "mean"] > 0
    # For C >= 2 the mask is argmax != 0: the same picture as three classes gives the same weighting.
    three = np.stack([1 - p, p * 0.5, p * 0.5]).reshape(1, 3, 21, 21)
    np.testing.assert_array_equal(u.mean_label_map(u.summarize(three)) != 0, radius <= 5)


def test_score_standard_error_is_zero_without_spread_and_tracks_the_real_spread() -> None:
    agreeing = u.MCAccumulator(groups=4)
    agreeing.add(np.repeat(_stack(1, t=1, c=1, h=4, w=4), 8, axis=0))
    assert agreeing.score_standard_error("entropy") == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(InvalidInput, match="groups=G"):
        u.MCAccumulator().score_standard_error("entropy")
    few = u.MCAccumulator(groups=4)
    few.add(_stack(1, t=3, c=1, h=4, w=4))
    with pytest.raises(InvalidInput, match="at least 4 samples"):
        few.score_standard_error("entropy")
    # Replicate the experiment: the jackknife error should match the spread of the score across replicates.
    rng = np.random.default_rng(7)
    centre = rng.normal(size=(1, 1, 4, 4))
    scores, errors = [], []
    for _ in range(150):
        logits = centre + rng.normal(size=(40, 1, 4, 4))
        accumulator = u.MCAccumulator(groups=8)
        accumulator.add(1 / (1 + np.exp(-logits)))
        scores.append(u.image_scores(accumulator.result())["mutual_information", "mean"])
        errors.append(accumulator.score_standard_error("mutual_information", "mean"))
    assert 0.6 < float(np.mean(errors)) / float(np.std(scores)) < 1.6
