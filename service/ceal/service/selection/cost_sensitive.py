"""Cost-sensitive selection (Kuo et al. 2018): the most uncertainty a radiologist can label in a time budget.

Each free image is worth its uncertainty and costs its predicted annotation seconds; a 0/1 knapsack picks
the set of greatest total uncertainty whose predicted seconds fit the budget. Seconds are rounded up and the
budget down, so the chosen list never exceeds the budget. The search covers the `max_candidates` most
uncertain images, which bounds its memory; when the table would still exceed `max_table_cells`, seconds are
counted in coarser units (still rounded up, so still within budget, at a small loss of optimality).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ceal.service.errors import InvalidInput

from ._ranking import available_indices, check_k, describe, rank_descending, rank_phrase
from .cost import AnnotationCostModel, knapsack
from .table import MEASURES, ScoreTable, Selection

__all__ = ["cost_sensitive_selection"]


def cost_sensitive_selection(
    table: ScoreTable,
    k: int,
    *,
    budget_seconds: float,
    measure: str = "mutual_information",
    max_candidates: int = 2000,
    max_table_cells: int = 64_000_000,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """The knapsack-optimal set of free rows for `budget_seconds` of annotation, ranked by uncertainty per
    predicted second (highest first), then cut to the first k.

    Rows with a missing score or a missing predicted time cannot be budgeted and are left out.
    k caps the list; pass k >= the pool size to spend the whole budget.
    scores: `measure` per predicted second, in query order.
    """
    k = check_k(k)
    if not (math.isfinite(budget_seconds) and budget_seconds >= 0):
        raise InvalidInput(
            f"budget_seconds must be a finite number of seconds >= 0 (the annotator's time); got {budget_seconds}"
        )
    if max_candidates < 1 or max_table_cells < 1:
        raise InvalidInput("max_candidates and max_table_cells must be >= 1")
    model = cost_model if cost_model is not None else AnnotationCostModel()
    values = table.measure(measure)
    seconds = model.predict(table.boundary_length, table.components)  # (N,)
    pool = available_indices(len(table), exclude)
    priced = pool[np.isfinite(values[pool]) & np.isfinite(seconds[pool])]
    shortlist = rank_descending(values, priced)[:max_candidates]  # (C,)

    # One knapsack unit = `unit` seconds, the smallest whole number keeping the DP table within bounds.
    unit = max(1, math.ceil(shortlist.size * (math.floor(budget_seconds) + 1) / max_table_cells))
    weights = np.ceil(seconds[shortlist] / unit).astype(np.int64)
    chosen = shortlist[knapsack(values[shortlist], weights, math.floor(budget_seconds / unit))]

    density = np.full(len(table), np.nan)  # (N,) uncertainty per predicted second
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 s to draw: infinitely cheap, ranked first
        density[chosen] = values[chosen] / seconds[chosen]
    query = rank_descending(density, chosen)[:k]

    uncertainty_rank = {int(i): p + 1 for p, i in enumerate(rank_descending(values, pool))}
    label = MEASURES[measure]
    reasons = tuple(
        f"{describe(label, float(values[i]))} for about {seconds[i]:.0f} s of drawing "
        f"({density[i]:.3g} per second), {rank_phrase(uncertainty_rank[int(i)], pool.size)}; "
        f"part of the most uncertain set that fits the {budget_seconds:.0f} s budget"
        for i in query
    )
    return Selection(
        query=tuple(int(i) for i in query),
        scores=tuple(float(density[i]) for i in query),
        reasons=reasons,
        estimated_seconds=tuple(float(seconds[i]) for i in query),
        strategy="cost_sensitive",
    )
