"""`rank_descending(..., k)` (partial partition) gives exactly the full ranking's first k rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.selection import bald_selection
from ceal.service.selection._ranking import rank_descending, ranking_positions
from ceal.service.selection.table import ScoreTable

_values = st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0, -1.0, np.inf, -np.inf, np.nan])


@settings(max_examples=300, deadline=None)
@given(st.lists(_values, max_size=40), st.integers(0, 45), st.randoms(use_true_random=False))
def test_top_k_is_the_prefix_of_the_full_ranking(values: list[float], k: int, rnd: object) -> None:
    scores = np.array(values, dtype=np.float64)
    indices = np.arange(scores.size, dtype=np.int64)
    rnd.shuffle(indices)  # type: ignore[attr-defined]  # callers may pass indices in any order
    full = rank_descending(scores, indices)
    assert rank_descending(scores, indices, k).tolist() == full[:k].tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(_values, min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_ranking_positions_are_the_full_ranking_s(values: list[float], rnd: object) -> None:
    scores = np.array(values, dtype=np.float64)
    indices = np.arange(scores.size, dtype=np.int64)
    rnd.shuffle(indices)  # type: ignore[attr-defined]
    full = rank_descending(scores, indices).tolist()
    rows = indices[: max(1, indices.size // 2)]
    assert ranking_positions(scores, indices, rows) == [full.index(r) + 1 for r in rows]


def test_top_k_keeps_ties_to_the_lower_index_across_the_cut() -> None:
    scores = np.array([1.0, 3.0, 3.0, 3.0, 2.0])
    assert rank_descending(scores, np.array([4, 3, 2, 1, 0], dtype=np.int64), 2).tolist() == [1, 2]


def test_strategy_top_k_matches_a_full_sort_on_a_large_pool() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    mi = np.round(rng.random(n), 3)  # many ties
    mi[rng.choice(n, 500, replace=False)] = np.nan
    table = ScoreTable(tuple(f"i{i}" for i in range(n)), mi, mi, mi, mi, np.ones(n), np.ones(n))
    exclude = set(range(0, n, 7))
    got = bald_selection(table, 100, exclude=exclude).query
    free = np.array([i for i in range(n) if i not in exclude], dtype=np.int64)
    assert list(got) == rank_descending(mi, free)[:100].tolist()
