"""The query policy: which strategy runs, with which parameters, for which round. One object, used by the
pool's query code (`pool/queries.py`, behind GetQueryList) and by the simulation alike, so what is
simulated is what is served.

`STRATEGY_SPECS` says what each registered strategy takes (a seed, a time budget to fill, pseudo-labels).
`QueryPolicy.plan` turns one request (a score table with its excluded rows, k, round, seed, budget, pseudo-label
cap) into a `QueryPlan`: the strategy function, the k it runs with and its keyword arguments; `plan.run(cost
model)` is the `Selection`. The service's defaults are the policy's defaults; the simulation's differences
are explicit fields (`pseudo_decay`, `pseudo_quantile`, `budget_images`, `candidates`), recorded in its config.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from ceal.service.errors import InvalidInput

from .cost import AnnotationCostModel
from .registry import SEEDED_STRATEGIES, STRATEGIES, Strategy, get_strategy
from .table import ScoreTable, Selection

__all__ = [
    "PSEUDO_DECAY",
    "PSEUDO_PER_LABEL",
    "PSEUDO_QUANTILE",
    "PSEUDO_WARMUP_ROUNDS",
    "STRATEGY_SPECS",
    "QueryPlan",
    "QueryPolicy",
    "StrategySpec",
]

PSEUDO_QUANTILE = 0.25  # CEAL round 0: entropy threshold at this quantile of the free pool's entropy
PSEUDO_DECAY = 0.1  # ... lowered by this fraction of δ_0 each round
# CEAL pseudo-labels only once the model has been fine-tuned on some human labels, and never more than the human
# labels in hand (the simulation: a round-0 model's most confident masks had Dice 0.40; docs/simulation.md).
PSEUDO_WARMUP_ROUNDS = 2
PSEUDO_PER_LABEL = 1.0


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy and what it takes: `seeded` a `seed`; `fills_budget` a `budget_seconds` (it then
    decides how many items, k = the table); `pseudo_labels` CEAL's round and threshold parameters."""

    name: str
    function: Strategy
    seeded: bool = False
    fills_budget: bool = False
    pseudo_labels: bool = False


STRATEGY_SPECS: Final[dict[str, StrategySpec]] = {
    name: StrategySpec(
        name,
        function,
        seeded=name in SEEDED_STRATEGIES,
        fills_budget=name == "cost_sensitive",
        pseudo_labels=name == "ceal",
    )
    for name, function in STRATEGIES.items()
}


@dataclass(frozen=True)
class QueryPlan:
    """One strategy call: `spec.function(table, k, exclude=exclude, cost_model=..., **params)`."""

    spec: StrategySpec
    table: ScoreTable
    k: int
    exclude: Collection[int]
    params: Mapping[str, Any] = field(default_factory=dict)

    def run(self, cost_model: AnnotationCostModel) -> Selection:
        return self.spec.function(self.table, self.k, exclude=self.exclude, cost_model=cost_model, **self.params)


@dataclass(frozen=True)
class QueryPolicy:
    """How a request becomes a strategy call. Defaults: the query servicer's.

    pseudo_quantile, pseudo_decay: CEAL's δ_0 is this quantile of the free rows' finite entropy; δ falls by
    pseudo_decay · δ_0 a round. pseudo_per_label, warmup_rounds: CEAL's cap per human label in hand, and the
    rounds without pseudo-labels. budget_images: None, the budget is the request's (cost-sensitive needs one
    > 0); n, the budget is n × the table's mean predicted annotation time (the simulation: a round's worth).
    candidates: suggestive annotation's shortlist; None, the strategy's default; 0, every free row; n,
    max(k, n).
    """

    pseudo_quantile: float = PSEUDO_QUANTILE
    pseudo_decay: float = PSEUDO_DECAY
    pseudo_per_label: float = PSEUDO_PER_LABEL
    warmup_rounds: int = PSEUDO_WARMUP_ROUNDS
    budget_images: int | None = None
    candidates: int | None = None

    def plan(
        self,
        strategy: str,
        table: ScoreTable,
        k: int,
        *,
        exclude: Collection[int] = (),
        round_index: int = 0,
        seed: int = 0,
        budget_seconds: float = 0.0,
        max_pseudo: int | None = None,
        cost_model: AnnotationCostModel | None = None,
    ) -> QueryPlan:
        """The call for `strategy` (a registry name) on `table` with rows `exclude` never chosen. k: the items
        asked for (a budget-filling strategy gets the whole table instead). cost_model: the annotation-time
        model (only `budget_images` reads it here)."""
        get_strategy(strategy)  # InvalidInput naming the known strategies
        spec = STRATEGY_SPECS[strategy.strip().lower()]
        params: dict[str, Any] = {}
        if spec.seeded:
            params["seed"] = seed
        if spec.fills_budget:
            params["budget_seconds"] = self._budget(table, budget_seconds, cost_model or AnnotationCostModel())
            k = len(table)
        if spec.pseudo_labels:
            params.update(self._ceal(table, exclude, round_index, max_pseudo))
        if spec.name == "suggestive" and self.candidates is not None:
            params["candidates"] = max(k, self.candidates or len(table))
        return QueryPlan(spec, table, k, exclude, params)

    def _budget(self, table: ScoreTable, requested: float, cost_model: AnnotationCostModel) -> float:
        if self.budget_images is not None:
            seconds = cost_model.predict(table.boundary_length, table.components)
            return self.budget_images * float(np.mean(seconds))
        if requested <= 0:
            raise InvalidInput("strategy cost_sensitive needs budget_seconds > 0 (the annotation time available)")
        return requested

    def _ceal(
        self, table: ScoreTable, exclude: Collection[int], round_index: int, max_pseudo: int | None
    ) -> dict[str, Any]:
        entropy = np.delete(table.entropy, sorted(exclude))  # the free rows'
        entropy = entropy[np.isfinite(entropy)]
        delta_0 = float(np.quantile(entropy, self.pseudo_quantile)) if len(entropy) else 0.0
        return {
            "round_index": round_index,
            "delta_0": delta_0,
            "decay": delta_0 * self.pseudo_decay,
            "max_pseudo": max_pseudo,
            "pseudo_per_label": self.pseudo_per_label,
            "warmup_rounds": self.warmup_rounds,
        }
