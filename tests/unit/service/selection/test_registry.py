from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.selection import STRATEGIES, ScoreTable, Selection, get_strategy

MakeTable = Callable[..., ScoreTable]

# What each strategy needs beyond (table, k).
EXTRA: dict[str, dict[str, object]] = {"cost_sensitive": {"budget_seconds": 10_000.0}}


def test_the_registry_names_every_strategy() -> None:
    assert set(STRATEGIES) == {
        "random",
        "entropy",
        "bald",
        "variance",
        "ceal",
        "suggestive",
        "cost_sensitive",
        "power_bald",
        "random_foreground",
        "ensemble",
        "typiclust",
    }
    assert get_strategy(" BALD ") is STRATEGIES["bald"]


def test_a_bad_name_lists_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="unknown selection strategy 'coreset'; choose one of") as caught:
        get_strategy("coreset")
    assert all(name in str(caught.value) for name in STRATEGIES)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_respects_exclude_and_caps_at_the_pool(make_table: MakeTable, name: str) -> None:
    rng = np.random.default_rng(3)
    table = make_table(rng.uniform(0, 0.01, 12), descriptors=rng.normal(size=(12, 4)))
    strategy = get_strategy(name)
    result = strategy(table, 50, exclude={0, 5}, **EXTRA.get(name, {}))
    assert isinstance(result, Selection) and result.strategy == name
    assert not {0, 5} & (set(result.query) | set(result.pseudo))
    assert len(result.query) == len(result.reasons) == len(result.estimated_seconds) <= 10
    if name != "cost_sensitive":  # the knapsack may leave out rows of no value
        assert sorted(result.query) == sorted(set(range(12)) - {0, 5})
    empty = strategy(make_table([], descriptors=np.zeros((0, 4))), 3, **EXTRA.get(name, {}))
    assert empty.query == () and empty.pseudo == ()
    with pytest.raises(ValueError, match="outside this table"):
        strategy(table, 1, exclude={12}, **EXTRA.get(name, {}))
