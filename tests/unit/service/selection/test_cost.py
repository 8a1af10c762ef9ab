from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.selection import AnnotationCostModel, knapsack


def test_defaults_predict_seconds_from_boundary_and_components() -> None:
    model = AnnotationCostModel()
    np.testing.assert_allclose(model.predict([0, 100, 400], [1, 1, 3]), [30.0, 45.0, 110.0])
    assert model.fitted_on == 0
    assert np.isnan(model.predict([np.nan], [1])[0])


def test_fit_recovers_the_coefficients_that_made_the_times() -> None:
    rng = np.random.default_rng(0)
    boundary = rng.uniform(50, 800, 40)
    components = rng.integers(1, 5, 40).astype(float)
    seconds = 12.0 + 0.3 * boundary + 7.0 * components
    fitted = AnnotationCostModel().fit(boundary, components, seconds)
    assert fitted.fitted_on == 40
    assert fitted.intercept_seconds == pytest.approx(12.0, abs=1e-6)
    assert fitted.seconds_per_boundary_pixel == pytest.approx(0.3, abs=1e-9)
    assert fitted.seconds_per_component == pytest.approx(7.0, abs=1e-6)


def test_fit_keeps_coefficients_non_negative() -> None:
    rng = np.random.default_rng(1)
    boundary = rng.uniform(50, 800, 30)
    components = rng.integers(1, 5, 30).astype(float)
    seconds = 500.0 - 0.2 * boundary + 3.0 * components  # longer boundary "faster": not physical
    fitted = AnnotationCostModel().fit(boundary, components, seconds)
    assert fitted.seconds_per_boundary_pixel == 0.0
    assert min(fitted.intercept_seconds, fitted.seconds_per_component) >= 0.0


def test_too_few_usable_observations_keep_the_model() -> None:
    model = AnnotationCostModel(intercept_seconds=5.0)
    assert model.fit([1, 2, 3, 4], [1, 1, 1, 1], [9, 9, 9, 9]) is model
    # Six rows, but two unusable (NaN, negative seconds): four left, still too few.
    boundary = [1, 2, 3, 4, 5, np.nan]
    assert model.fit(boundary, [1] * 6, [9, 9, 9, 9, -1, 9]) is model
    assert model.fit([1, 2, 3, 4, 5], [1, 1, 2, 1, 1], [9, 9, 9, 9, 9]).fitted_on == 5


def test_bad_coefficients_and_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        AnnotationCostModel(seconds_per_component=-1.0)
    with pytest.raises(ValueError, match="equal lengths"):
        AnnotationCostModel().predict([1, 2], [1])
    with pytest.raises(ValueError, match="equal lengths"):
        AnnotationCostModel().fit([1, 2], [1, 2], [1])


def _brute_force_best(values: list[float], weights: list[int], capacity: int) -> float:
    best = 0.0
    for size in range(len(values) + 1):
        for subset in itertools.combinations(range(len(values)), size):
            if sum(weights[i] for i in subset) <= capacity:
                best = max(best, sum(values[i] for i in subset))
    return best


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1, 10, allow_nan=False, allow_infinity=False), st.integers(0, 12)),
        max_size=9,
    ),
    st.integers(0, 40),
)
def test_knapsack_is_optimal_against_brute_force(items: list[tuple[float, int]], capacity: int) -> None:
    values = [v for v, _ in items]
    weights = [w for _, w in items]
    chosen = knapsack(np.array(values), np.array(weights, dtype=np.int64), capacity)
    assert chosen == sorted(set(chosen))
    assert sum(weights[i] for i in chosen) <= capacity
    assert all(values[i] > 0 for i in chosen)
    assert sum(values[i] for i in chosen) == pytest.approx(
        _brute_force_best(values, weights, capacity), rel=1e-9, abs=1e-9
    )


def test_knapsack_prefers_the_better_pair_to_the_best_single() -> None:
    # Greedy by value takes item 0 (10) and then nothing fits; the optimum is 1 + 2 (12).
    assert knapsack(np.array([10.0, 6.0, 6.0]), np.array([6, 5, 5]), 10) == [1, 2]
    assert knapsack(np.array([10.0, 6.0, 6.0]), np.array([6, 5, 5]), 0) == []
    assert knapsack(np.array([1.0, 2.0]), np.array([0, 3]), 0) == [0]  # free items always fit
    assert knapsack(np.array([], dtype=float), np.array([], dtype=np.int64), 5) == []


@pytest.mark.parametrize(
    ("values", "weights", "capacity", "message"),
    [
        ([1.0, np.nan], [1, 1], 3, "must be finite"),
        ([1.0, 2.0], [1.5, 1.0], 3, "must be integers"),
        ([1.0, 2.0], [1, -1], 3, "weights must be >= 0"),
        ([1.0, 2.0], [1, 1], -1, "capacity must be >= 0"),
        ([1.0, 2.0], [1], 3, "equal length"),
    ],
)
def test_knapsack_refuses_bad_input(values: list[float], weights: list[float], capacity: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        knapsack(np.array(values), np.array(weights), capacity)


def test_predictions_are_clamped_to_a_plausible_range() -> None:
    from ceal.service.errors import InvalidInput
    from ceal.service.selection.cost import MAX_SECONDS, MIN_SECONDS

    model = AnnotationCostModel()
    # the weak model: a ragged mask with a 67,000-pixel boundary on one 128 x 128 slice
    assert model.predict([67_000], [12])[0] == MAX_SECONDS == 600.0
    assert AnnotationCostModel(0.0, 0.0, 0.0).predict([0], [0])[0] == MIN_SECONDS
    fitted = model.fit([10, 20, 30, 40, 50], [1, 1, 1, 1, 1], [5e3, 6e3, 7e3, 8e3, 9e3])
    assert fitted.fitted_on == 5 and fitted.predict([30], [1])[0] == MAX_SECONDS  # the clamp survives a fit
    with pytest.raises(InvalidInput, match="clamp"):
        AnnotationCostModel(min_seconds=10.0, max_seconds=5.0)
