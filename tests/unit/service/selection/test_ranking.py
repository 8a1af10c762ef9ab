from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.errors import InvalidInput
from ceal.service.selection._ranking import available_indices, check_k, rank_descending, rank_phrase

_scores = st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.0, np.inf, -np.inf, np.nan]), min_size=0, max_size=30)


@settings(max_examples=200, deadline=None)
@given(_scores)
def test_rank_descending_orders_by_score_then_index_with_nan_last(values: list[float]) -> None:
    scores = np.array(values, dtype=np.float64)
    ranked = rank_descending(scores, np.arange(scores.size, dtype=np.int64))
    assert sorted(ranked.tolist()) == list(range(scores.size))
    for a, b in itertools.pairwise(ranked):
        sa, sb = scores[a], scores[b]
        if np.isnan(sa):
            assert np.isnan(sb) and a < b
        elif not np.isnan(sb):
            assert sa > sb or (sa == sb and a < b)


def test_rank_descending_keeps_to_the_given_indices() -> None:
    scores = np.array([5.0, 1.0, 3.0, 4.0])
    assert rank_descending(scores, np.array([1, 2], dtype=np.int64)).tolist() == [2, 1]


def test_available_indices_drops_exclude_and_refuses_foreign_indices() -> None:
    assert available_indices(5, {0, 3}).tolist() == [1, 2, 4]
    assert available_indices(0, set()).tolist() == []
    with pytest.raises(InvalidInput, match="index 5, outside this table of 5 images"):
        available_indices(5, {5})
    with pytest.raises(InvalidInput, match="index -1"):
        available_indices(5, [-1])


@pytest.mark.parametrize("k", [-1, 1.5, True, "3"])
def test_check_k_refuses_what_is_not_a_count(k: object) -> None:
    with pytest.raises(InvalidInput, match=r"^k must be"):
        check_k(k)  # type: ignore[arg-type]


def test_rank_phrase_reads_as_a_sentence() -> None:
    assert rank_phrase(3, 1200) == "ranked 3 of 1200 images in the pool (top 1%)"
    assert rank_phrase(2, 100) == "ranked 2 of 100 images in the pool (top 2%)"
    assert rank_phrase(1, 1) == "the only one of the images in the pool"
