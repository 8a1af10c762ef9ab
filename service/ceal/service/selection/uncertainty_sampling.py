"""Baselines: random sampling, and the top-k most uncertain by one measure (entropy, BALD, variance)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ._ranking import (
    available_indices,
    check_k,
    rank_descending,
    rank_phrase,
    ranked_selection,
    top_uncertain,
)
from .cost import AnnotationCostModel
from .table import ScoreTable, Selection

__all__ = ["bald_selection", "entropy_selection", "random_selection", "variance_selection"]


def random_selection(
    table: ScoreTable,
    k: int,
    *,
    seed: int = 0,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """k free rows drawn uniformly without replacement; the same seed and pool give the same list.

    scores: the uniform draw each row was ranked by.
    """
    k = check_k(k)
    pool = available_indices(len(table), exclude)
    draws = np.full(len(table), np.nan)  # (N,) one uniform draw per free row
    draws[pool] = np.random.default_rng(seed).random(pool.size)
    query = rank_descending(draws, pool)[:k]
    reasons = tuple(
        f"drawn at random (seed {seed}) as a baseline that ignores uncertainty, {rank_phrase(p + 1, pool.size)}"
        for p in range(query.size)
    )
    return ranked_selection(table, query, draws, reasons, strategy="random", cost_model=cost_model)


def entropy_selection(
    table: ScoreTable,
    k: int,
    *,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """The k free rows of highest mean predictive entropy (ties to the lower index, NaN last)."""
    return top_uncertain(table, k, "entropy", strategy="entropy", exclude=exclude, cost_model=cost_model)


def bald_selection(
    table: ScoreTable,
    k: int,
    *,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """The k free rows of highest mean mutual information (BALD; ties to the lower index, NaN last)."""
    return top_uncertain(table, k, "mutual_information", strategy="bald", exclude=exclude, cost_model=cost_model)


def variance_selection(
    table: ScoreTable,
    k: int,
    *,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """The k free rows of highest mean MC-sample variance (ties to the lower index, NaN last)."""
    return top_uncertain(table, k, "variance", strategy="variance", exclude=exclude, cost_model=cost_model)
