from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.selection import AnnotationCostModel, ScoreTable, cost_sensitive_selection

MakeTable = Callable[..., ScoreTable]

# With this model the predicted seconds are the boundary length.
PER_PIXEL = AnnotationCostModel(0.0, 1.0, 0.0)


def test_the_budget_buys_the_most_uncertainty_not_the_densest_items(make_table: MakeTable) -> None:
    # Within 100 s: rows 1 + 2 give 0.12; picking by density (row 0, then row 3) gives only 0.11.
    table = make_table([0.1] * 4, mutual_information=[0.10, 0.06, 0.06, 0.01], boundary_length=[60, 50, 50, 10])
    selection = cost_sensitive_selection(table, 10, budget_seconds=100, cost_model=PER_PIXEL)
    assert selection.query == (1, 2)
    assert selection.estimated_seconds == (50.0, 50.0)
    assert selection.scores == pytest.approx((0.06 / 50, 0.06 / 50))
    assert "fits the 100 s budget" in selection.reasons[0]
    assert "mutual information 0.06 for about 50 s of drawing" in selection.reasons[0]
    assert selection.strategy == "cost_sensitive"


def test_the_chosen_set_is_ranked_by_uncertainty_per_second(make_table: MakeTable) -> None:
    table = make_table([0.1] * 3, mutual_information=[0.01, 0.10, 0.02], boundary_length=[10, 60, 30])
    selection = cost_sensitive_selection(table, 10, budget_seconds=1000, cost_model=PER_PIXEL)
    assert selection.query == (1, 0, 2)
    assert list(selection.scores) == sorted(selection.scores, reverse=True)


def test_k_exclude_missing_scores_and_empty_budget(make_table: MakeTable) -> None:
    table = make_table(
        [0.1] * 5,
        mutual_information=[0.10, 0.06, np.nan, 0.01, 0.02],
        boundary_length=[60, 50, 50, 10, np.nan],
    )
    selection = cost_sensitive_selection(table, 10, budget_seconds=1000, cost_model=PER_PIXEL, exclude={0})
    assert set(selection.query) == {1, 3}  # 2: no score, 4: no predicted time, 0: excluded
    assert cost_sensitive_selection(table, 1, budget_seconds=1000, cost_model=PER_PIXEL).query == (0,)
    assert cost_sensitive_selection(table, 5, budget_seconds=0, cost_model=PER_PIXEL).query == ()
    assert cost_sensitive_selection(make_table([]), 5, budget_seconds=60).query == ()


def test_max_candidates_restricts_the_search_to_the_most_uncertain(make_table: MakeTable) -> None:
    table = make_table([0.1] * 3, mutual_information=[0.10, 0.06, 0.06], boundary_length=[60, 50, 50])
    selection = cost_sensitive_selection(table, 10, budget_seconds=100, cost_model=PER_PIXEL, max_candidates=1)
    assert selection.query == (0,)


@pytest.mark.parametrize("budget", [-1.0, float("nan"), float("inf")])
def test_a_bad_budget_says_what_to_send(make_table: MakeTable, budget: float) -> None:
    with pytest.raises(ValueError, match="budget_seconds must be a finite number of seconds >= 0"):
        cost_sensitive_selection(make_table([0.1]), 1, budget_seconds=budget)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1, allow_nan=False), st.floats(0, 400, allow_nan=False), st.integers(1, 3)),
        max_size=15,
    ),
    st.floats(0, 600, allow_nan=False),
    st.sampled_from([64_000_000, 50]),
)
def test_the_list_never_exceeds_the_budget(
    make_table: MakeTable, rows: list[tuple[float, float, int]], budget: float, max_table_cells: int
) -> None:
    # max_table_cells = 50 forces coarse time units: still within budget.
    table = make_table(
        [0.1] * len(rows),
        mutual_information=[r[0] for r in rows],
        boundary_length=[r[1] for r in rows],
        components=[r[2] for r in rows],
    )
    selection = cost_sensitive_selection(table, len(rows), budget_seconds=budget, max_table_cells=max_table_cells)
    assert selection.total_seconds <= budget + 1e-9
    assert len(set(selection.query)) == len(selection.query)
    assert all(table.mutual_information[i] > 0 for i in selection.query)
