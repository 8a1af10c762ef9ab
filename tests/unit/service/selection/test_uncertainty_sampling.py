from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.selection import (
    AnnotationCostModel,
    ScoreTable,
    bald_selection,
    entropy_selection,
    random_selection,
    variance_selection,
)

MakeTable = Callable[..., ScoreTable]


def test_entropy_takes_the_top_k_with_ties_to_the_lower_index(make_table: MakeTable) -> None:
    table = make_table([0.1, 0.5, 0.3, 0.5, 0.2])
    selection = entropy_selection(table, 3)
    assert selection.query == (1, 3, 2)
    assert selection.scores == (0.5, 0.5, 0.3)
    assert selection.strategy == "entropy"
    assert selection.pseudo == ()
    assert selection.reasons[0] == "predictive entropy 0.5, ranked 1 of 5 images in the pool (top 20%)"


def test_bald_and_variance_rank_by_their_own_columns(make_table: MakeTable) -> None:
    table = make_table([0.9, 0.1, 0.1, 0.1], mutual_information=[0.0, 0.03, 0.01, 0.02], variance=[0.0, 0.0, 0.7, 0.0])
    assert bald_selection(table, 2).query == (1, 3)
    assert bald_selection(table, 1).reasons[0].startswith("mutual information 0.03, ranked 1 of 4")
    assert variance_selection(table, 1).query == (2,)


def test_missing_scores_rank_last_and_say_so(make_table: MakeTable) -> None:
    table = make_table([np.nan, 0.2, np.nan, 0.1])
    selection = entropy_selection(table, 4)
    assert selection.query == (1, 3, 0, 2)
    assert "missing" in selection.reasons[2]


def test_exclude_k_beyond_the_pool_and_empty_pools(make_table: MakeTable) -> None:
    table = make_table([0.4, 0.3, 0.2])
    assert entropy_selection(table, 10, exclude={0}).query == (1, 2)
    assert entropy_selection(table, 0).query == ()
    assert entropy_selection(table, 2, exclude={0, 1, 2}).query == ()
    empty = entropy_selection(make_table([]), 5)
    assert empty.query == () and empty.total_seconds == 0.0


def test_estimated_seconds_come_from_the_cost_model(make_table: MakeTable) -> None:
    table = make_table([0.4, 0.3], boundary_length=[200.0, 0.0], components=[2.0, 1.0])
    assert entropy_selection(table, 2).estimated_seconds == (20 + 0.15 * 200 + 10 * 2, 20 + 10)
    fast = AnnotationCostModel(1.0, 0.0, 0.0)
    assert entropy_selection(table, 2, cost_model=fast).estimated_seconds == (1.0, 1.0)


def test_random_is_seeded_uniform_and_respects_exclude(make_table: MakeTable) -> None:
    table = make_table(np.linspace(0, 1, 40))
    first = random_selection(table, 10, seed=7, exclude={1, 2, 3})
    assert first == random_selection(table, 10, seed=7, exclude={1, 2, 3})
    assert first.query != random_selection(table, 10, seed=8, exclude={1, 2, 3}).query
    assert not {1, 2, 3} & set(first.query)
    assert len(set(first.query)) == 10
    assert list(first.scores) == sorted(first.scores, reverse=True)
    assert "seed 7" in first.reasons[0]
    assert sorted(random_selection(table, 100, seed=1).query) == list(range(40))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=0, max_size=25),
    st.integers(0, 30),
    st.sets(st.integers(0, 24)),
)
def test_top_k_property(make_table: MakeTable, values: list[float], k: int, exclude_candidates: set[int]) -> None:
    table = make_table(values)
    exclude = {i for i in exclude_candidates if i < len(values)}
    selection = entropy_selection(table, k, exclude=exclude)
    free = [i for i in range(len(values)) if i not in exclude]
    assert len(selection.query) == min(k, len(free))
    assert not exclude & set(selection.query)
    unpicked = [values[i] for i in free if i not in selection.query]
    assert all(s >= u for s in selection.scores for u in unpicked)
    assert list(selection.scores) == [values[i] for i in selection.query]


@pytest.mark.parametrize("strategy", [random_selection, entropy_selection, bald_selection, variance_selection])
def test_negative_k_is_refused(strategy: object, make_table: MakeTable) -> None:
    with pytest.raises(ValueError, match="k must be >= 0"):
        strategy(make_table([0.1]), -1)  # type: ignore[operator]
