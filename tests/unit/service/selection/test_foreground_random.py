from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.errors import InvalidInput
from ceal.service.selection import ScoreTable, random_foreground_selection

MakeTable = Callable[..., ScoreTable]


def _table(make_table: MakeTable, n: int = 40, empty: int = 10) -> ScoreTable:
    size = np.arange(n, dtype=float) * 10  # predicted boundary length grows with the row
    components = np.ones(n)
    components[:empty] = 0  # the first rows predict nothing
    return make_table([0.1] * n, boundary_length=size, components=components)


def test_one_pick_per_size_stratum_of_the_foreground_rows(make_table: MakeTable) -> None:
    table = _table(make_table)
    for seed in range(20):
        query = random_foreground_selection(table, 5, seed=seed).query
        assert all(q >= 10 for q in query)  # never an empty prediction while foreground rows remain
        # 30 foreground rows sorted by size → strata of 6: rows 10-15, 16-21, ... one from each
        assert sorted((q - 10) // 6 for q in query) == [0, 1, 2, 3, 4]


def test_seeded_and_different_across_seeds(make_table: MakeTable) -> None:
    table = _table(make_table)
    a = random_foreground_selection(table, 5, seed=3)
    assert a == random_foreground_selection(table, 5, seed=3)
    assert any(random_foreground_selection(table, 5, seed=s).query != a.query for s in range(4, 10))
    assert a.strategy == "random_foreground" and "stratum" in a.reasons[0]


def test_fills_with_empty_rows_when_foreground_runs_short(make_table: MakeTable) -> None:
    table = _table(make_table, n=12, empty=9)
    chosen = random_foreground_selection(table, 5, seed=0, exclude={10})
    assert len(chosen.query) == 5 and 10 not in chosen.query
    assert set(chosen.query[:2]) == {9, 11} and all(q < 9 for q in chosen.query[2:])
    assert "without predicted foreground" in chosen.reasons[-1]


def test_strata_follow_the_foreground_fraction_when_the_table_has_it(make_table: MakeTable) -> None:
    base = _table(make_table)  # boundary length grows with the row
    fraction = np.arange(len(base), dtype=float)[::-1] / 100  # the foreground shrinks with the row
    table = dataclasses.replace(base, foreground_fraction=fraction)
    for seed in range(20):
        query = random_foreground_selection(table, 5, seed=seed).query
        # the 30 foreground rows by fraction are rows 39..10: strata 39-34, 33-28, ... one from each
        assert sorted((39 - q) // 6 for q in query) == [0, 1, 2, 3, 4]
    chosen = random_foreground_selection(table, 2, seed=0)
    assert list(chosen.scores) == [fraction[q] for q in chosen.query]


def test_a_negative_foreground_fraction_is_refused(make_table: MakeTable) -> None:
    with pytest.raises(InvalidInput, match="foreground_fraction"):
        dataclasses.replace(_table(make_table), foreground_fraction=np.full(40, -0.1))
