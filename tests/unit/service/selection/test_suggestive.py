from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.selection import (
    ScoreTable,
    entropy_selection,
    greedy_representative,
    representativeness,
    suggestive_selection,
    unit_rows,
)

MakeTable = Callable[..., ScoreTable]

# Five near-identical images along x (all uncertain) and three along y (less uncertain).
CLUSTERS = [[1, 0], [1, 0.1], [1, -0.1], [1, 0.05], [1, -0.05], [0, 1], [0.1, 1], [-0.1, 1]]
CLUSTER_ENTROPY = [0.9, 0.85, 0.8, 0.75, 0.7, 0.3, 0.2, 0.1]


def _random_instance(seed: int, n_candidates: int, n_pool: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return unit_rows(rng.normal(size=(n_candidates, dim))), unit_rows(rng.normal(size=(n_pool, dim)))


def _plain_greedy(candidates: np.ndarray, pool: np.ndarray, k: int) -> list[int]:
    """Textbook greedy: recompute every gain every step, first (lowest) row among equal gains."""
    picks: list[int] = []
    for _ in range(min(k, candidates.shape[0])):
        base = representativeness(candidates, pool, picks)
        gains = [
            -math.inf if r in picks else representativeness(candidates, pool, [*picks, r]) - base
            for r in range(candidates.shape[0])
        ]
        picks.append(int(np.argmax(gains)))
    return picks


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 12), st.integers(1, 4))
def test_greedy_with_k_1_is_the_brute_force_optimum(seed: int, n_candidates: int, n_pool: int, dim: int) -> None:
    candidates, pool = _random_instance(seed, n_candidates, n_pool, dim)
    picks, gains = greedy_representative(candidates, pool, 1)
    best = max(representativeness(candidates, pool, [r]) for r in range(n_candidates))
    assert gains[0] == pytest.approx(best, rel=1e-9, abs=1e-9)
    assert representativeness(candidates, pool, picks) == pytest.approx(best, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 7), st.integers(1, 10), st.integers(1, 3), st.integers(1, 4))
def test_greedy_reaches_1_minus_1_over_e_of_the_best_subset(
    seed: int, n_candidates: int, n_pool: int, dim: int, k: int
) -> None:
    candidates, pool = _random_instance(seed, n_candidates, n_pool, dim)
    picks, gains = greedy_representative(candidates, pool, k)
    size = min(k, n_candidates)
    best = max(
        representativeness(candidates, pool, list(subset))
        for subset in itertools.combinations(range(n_candidates), size)
    )
    value = representativeness(candidates, pool, picks)
    assert len(picks) == len(set(picks)) == size
    assert value >= (1 - 1 / math.e) * best - 1e-9
    assert value == pytest.approx(sum(gains), rel=1e-9, abs=1e-9)
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(gains))  # submodular: gains shrink


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.integers(1, 15), st.integers(0, 6))
def test_lazy_greedy_picks_what_plain_greedy_picks(seed: int, n_candidates: int, n_pool: int, k: int) -> None:
    # Few distinct directions make exact ties, which both must break towards the lower row.
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(3, 2))
    candidates = unit_rows(directions[rng.integers(0, 3, n_candidates)])
    pool = unit_rows(directions[rng.integers(0, 3, n_pool)])
    picks, _ = greedy_representative(candidates, pool, k)
    assert picks == _plain_greedy(candidates, pool, k)


def test_suggestive_covers_both_clusters_where_entropy_takes_one(make_table: MakeTable) -> None:
    table = make_table(CLUSTER_ENTROPY, descriptors=CLUSTERS)
    assert set(entropy_selection(table, 2).query) <= {0, 1, 2, 3, 4}
    selection = suggestive_selection(table, 2, candidates=8, measure="entropy")
    assert selection.query[0] in {0, 1, 2, 3, 4}
    assert selection.query[1] in {5, 6, 7}
    assert selection.scores[0] > selection.scores[1] > 0
    assert "pick 1 for covering the pool" in selection.reasons[0]
    assert selection.strategy == "suggestive"


def test_the_shortlist_is_the_most_uncertain(make_table: MakeTable) -> None:
    table = make_table(CLUSTER_ENTROPY, descriptors=CLUSTERS)
    # Default shortlist is 4k = 4 images, all from the first cluster.
    assert set(suggestive_selection(table, 1, measure="entropy").query) <= {0, 1, 2, 3}
    assert set(suggestive_selection(table, 2, candidates=2, measure="entropy").query) == {0, 1}


def test_exclude_edges_and_bad_input(make_table: MakeTable) -> None:
    table = make_table(CLUSTER_ENTROPY, descriptors=CLUSTERS)
    selection = suggestive_selection(table, 20, candidates=20, exclude={0, 5})
    assert sorted(selection.query) == [1, 2, 3, 4, 6, 7]
    assert suggestive_selection(table, 0).query == ()
    assert suggestive_selection(table, 3, exclude=set(range(8))).query == ()
    with pytest.raises(ValueError, match="needs descriptors"):
        suggestive_selection(make_table(CLUSTER_ENTROPY), 2)
    with pytest.raises(ValueError, match=r"candidates must be >= k \(3\)"):
        suggestive_selection(table, 3, candidates=2)


def test_zero_and_non_finite_descriptors_are_similar_to_nothing(make_table: MakeTable) -> None:
    unit = unit_rows(np.array([[0.0, 0.0], [np.nan, 1.0], [3.0, 4.0]]))
    np.testing.assert_allclose(unit, np.array([[0.0, 0.0], [0.0, 0.0], [0.6, 0.8]]), rtol=1e-6)
    table = make_table([0.5, 0.4, 0.3], descriptors=[[0, 0], [np.nan, 1], [3, 4]])
    selection = suggestive_selection(table, 3)
    assert selection.query[0] == 2 and selection.scores[0] == pytest.approx(1.0)
