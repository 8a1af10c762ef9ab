"""The query policy's strategy table is the proto enum's, and its plans carry each strategy's parameters."""

from __future__ import annotations

import numpy as np
import pytest

from ceal.service.errors import InvalidInput
from ceal.service.selection import ScoreTable
from ceal.service.selection.policy import PSEUDO_PER_LABEL, STRATEGY_SPECS, QueryPolicy
from ceal.service.servicers.pool_messages import STRATEGIES as SERVED
from ceal.v1 import active_learning_pb2 as pb


def _table(n: int = 8) -> ScoreTable:
    """n rows of rising entropy (0.1 .. 0.8 nats); the other columns follow it."""
    entropy = np.linspace(0.1, 0.8, n)
    columns = {name: entropy * scale for name, scale in (("mutual_information", 0.5), ("variance", 0.25))}
    return ScoreTable(
        image_ids=tuple(f"i{i}" for i in range(n)),
        entropy=entropy,
        confidence=1 - entropy,
        boundary_length=np.linspace(0.0, 70.0, n),
        components=np.ones(n),
        **columns,
    )


def test_every_enum_strategy_is_registered_and_nothing_else() -> None:
    enum_names = {v.name.removeprefix("STRATEGY_").lower() for v in pb.Strategy.DESCRIPTOR.values if v.number}
    assert set(STRATEGY_SPECS) == enum_names == set(SERVED.values())
    assert SERVED[pb.STRATEGY_COST_SENSITIVE] == "cost_sensitive" and SERVED[pb.STRATEGY_POWER_BALD] == "power_bald"


def test_plans_carry_each_strategys_parameters() -> None:
    table = _table()
    policy = QueryPolicy()
    assert policy.plan("random", table, 3, seed=7).params == {"seed": 7}
    assert policy.plan("entropy", table, 3).params == {} and policy.plan("entropy", table, 3).k == 3
    budget = policy.plan("cost_sensitive", table, 3, budget_seconds=90.0)
    assert (budget.k, budget.params) == (len(table), {"budget_seconds": 90.0})
    with pytest.raises(InvalidInput, match="budget_seconds > 0"):
        policy.plan("cost_sensitive", table, 3)
    ceal = policy.plan("ceal", table, 3, exclude=(0, 1), round_index=2, max_pseudo=4).params
    assert ceal["delta_0"] == pytest.approx(np.quantile(table.entropy[2:], 0.25))
    assert ceal["decay"] == pytest.approx(ceal["delta_0"] * 0.1) and ceal["pseudo_per_label"] == PSEUDO_PER_LABEL
    assert (ceal["round_index"], ceal["max_pseudo"]) == (2, 4)
    assert QueryPolicy(candidates=0).plan("suggestive", table, 3).params == {"candidates": len(table)}
    assert QueryPolicy(budget_images=2).plan("cost_sensitive", table, 3).params["budget_seconds"] > 0
    with pytest.raises(InvalidInput, match="unknown selection strategy"):
        policy.plan("nope", table, 3)
