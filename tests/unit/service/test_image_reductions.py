"""Image-level reductions and CEAL's boundary weights, against hand-computed values and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ceal.service import image_reductions as r
from ceal.service.errors import InvalidInput

SETTINGS = settings(deadline=None, max_examples=60)
maps = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
    elements=st.floats(-10, 10, allow_nan=False),
)
masks = hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=7))


def test_mean_and_sum_of_a_known_map() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert r.reduce_map(values, "mean") == pytest.approx(5.5)
    assert r.reduce_map(values, "sum") == pytest.approx(66.0)


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(5.0, 97.0), (10.5, 94.0), (1.0, 99.0), (0.001, 99.0), (100.0, 49.5), (50.0, 74.5)],
)
def test_top_k_mean_of_a_known_map(percent: float, expected: float) -> None:
    # 0..99 in a shuffled 10 x 10 map: the top ceil(p% of 100) values are the last ones of 0..99.
    values = np.random.default_rng(0).permutation(100).reshape(10, 10)
    assert r.reduce_map(values, "top_k_mean", top_k_percent=percent) == pytest.approx(expected)


@SETTINGS
@given(maps, st.floats(0.01, 100.0))
def test_top_k_mean_lies_between_the_mean_and_the_max(values: npt.NDArray[np.float64], percent: float) -> None:
    top = r.reduce_map(values, "top_k_mean", top_k_percent=percent)
    assert r.reduce_map(values, "mean") - 1e-9 <= top <= values.max() + 1e-9
    k = r.top_k_count(values.size, percent)
    assert 1 <= k <= values.size and k >= percent / 100 * values.size - 1e-9
    assert top == pytest.approx(float(np.sort(values.ravel())[::-1][:k].mean()))


def test_unknown_reduction_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="mean, sum, top_k_mean, boundary_weighted") as caught:
        r.reduce_map(np.ones((2, 2)), "median")
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reduction": "boundary_weighted"}, "needs weights"),
        ({"reduction": "boundary_weighted", "weights": np.ones((2, 3))}, "shape of values"),
        ({"reduction": "boundary_weighted", "weights": np.zeros((2, 2))}, "not all zero"),
        ({"reduction": "boundary_weighted", "weights": -np.ones((2, 2))}, "non-negative"),
        ({"reduction": "top_k_mean", "top_k_percent": 0.0}, "top_k_percent"),
        ({"reduction": "top_k_mean", "top_k_percent": float("nan")}, "top_k_percent"),
    ],
)
def test_bad_reduction_arguments_say_what_to_change(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        r.reduce_map(np.ones((2, 2)), **kwargs)  # type: ignore[arg-type]


def test_non_finite_or_misshapen_maps_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="non-finite"):
        r.reduce_map(np.array([[1.0, np.nan]]), "mean")
    with pytest.raises(InvalidInput, match=r"\(H, W\)"):
        r.reduce_map(np.ones(4), "mean")


@SETTINGS
@given(maps)
def test_uniform_weights_give_the_plain_mean(values: npt.NDArray[np.float64]) -> None:
    weighted = r.reduce_map(values, "boundary_weighted", weights=np.full(values.shape, 3.0))
    assert weighted == pytest.approx(r.reduce_map(values, "mean"), abs=1e-9)


def _brute_force_weights(mask: npt.NDArray[np.bool_], sigma: float) -> npt.NDArray[np.float64]:
    """exp(-(d - 1) / sigma) with d the distance from each pixel to the nearest pixel of the other side."""
    pixels = list(itertools.product(range(mask.shape[0]), range(mask.shape[1])))
    out = np.zeros(mask.shape)
    for i, j in pixels:
        d = min(math.hypot(i - a, j - b) for a, b in pixels if mask[a, b] != mask[i, j])
        out[i, j] = math.exp(-(d - 1) / sigma)
    return out


@SETTINGS
@given(masks, st.floats(0.3, 20.0))
def test_boundary_weights_match_brute_force_distances(mask: npt.NDArray[np.bool_], sigma: float) -> None:
    weights = r.boundary_weights(mask, sigma)
    if mask.all() or not mask.any():
        np.testing.assert_array_equal(weights, np.ones(mask.shape))
    else:
        np.testing.assert_allclose(weights, _brute_force_weights(mask, sigma), rtol=1e-12)
    assert np.all(weights > 0) and np.all(weights <= 1)


def test_boundary_weights_peak_on_the_boundary_and_decay_on_both_sides() -> None:
    mask = np.zeros((21, 21), dtype=bool)
    mask[5:16, 5:16] = True
    weights = r.boundary_weights(mask, sigma=2.0)
    row = weights[10]  # across the square: outside 0..4, inside 5..15, outside 16..20
    assert row[4] == row[5] == row[15] == row[16] == 1.0
    assert np.all(np.diff(row[:5]) > 0) and np.all(np.diff(row[5:11]) < 0)
    assert np.all(np.diff(row[10:16]) > 0) and np.all(np.diff(row[16:]) < 0)
    assert row[10] == pytest.approx(math.exp(-5 / 2.0))  # centre: 6 pixels from the outside, d - 1 = 5
    np.testing.assert_array_equal(r.boundary_weights(np.zeros((3, 3), dtype=bool), 1.0), np.ones((3, 3)))
    np.testing.assert_array_equal(r.boundary_weights(np.ones((3, 3), dtype=bool), 1.0), np.ones((3, 3)))
    with pytest.raises(InvalidInput, match="sigma"):
        r.boundary_weights(mask, 0.0)


def test_boundary_weighting_ranks_doubt_on_the_border_above_the_same_doubt_elsewhere() -> None:
    mask = np.zeros((21, 21), dtype=bool)
    mask[5:16, 5:16] = True
    weights = r.boundary_weights(mask, sigma=2.0)
    on_border, far_away = np.zeros((21, 21)), np.zeros((21, 21))
    on_border[5, 5:16] = 1.0
    far_away[0, 0:11] = 1.0
    assert r.reduce_map(on_border, "mean") == r.reduce_map(far_away, "mean")
    assert r.reduce_map(on_border, "boundary_weighted", weights=weights) > 2 * r.reduce_map(
        far_away, "boundary_weighted", weights=weights
    )
