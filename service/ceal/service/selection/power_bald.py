"""PowerBALD: a batch drawn with probability proportional to mutual information to the power β.

Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal, "Stochastic Batch Acquisition: A Simple
Baseline for Deep Active Learning" (TMLR 2023). Top-k BALD fills a batch with the k highest scores, which on a
pool of near-duplicates are the same kind of image k times (and often the outliers first); drawing the batch
instead, without replacement and with probability ∝ MI^β, keeps the most informative images likely while
spreading the batch. It matched BatchBALD at a fraction of the cost there. The draw is the Gumbel-top-k trick:
rank by β·log(MI) + Gumbel noise, so the whole ordering is one sample without replacement and any prefix of it
(a shorter list, a lease reserve) is a valid batch. Rows whose MI is missing come last; MI of 0 never comes
before a positive one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ceal.service.errors import InvalidInput

from ._ranking import (
    available_indices,
    check_k,
    describe,
    rank_descending,
    rank_phrase,
    ranked_selection,
    ranking_positions,
)
from .cost import AnnotationCostModel
from .table import MEASURES, ScoreTable, Selection

__all__ = ["power_bald_selection"]

# Zero MI (no disagreement at all) gets this log-weight: drawn only after every positive score.
_LOG_ZERO = -1e300


def power_bald_selection(
    table: ScoreTable,
    k: int,
    *,
    seed: int = 0,
    beta: float = 1.0,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """k free rows drawn without replacement with probability ∝ MI^β (β = 1 as in the paper).

    The same seed and pool give the same list; scores are the rows' mutual information.
    """
    k = check_k(k)
    if not (np.isfinite(beta) and beta > 0):
        raise InvalidInput(f"beta must be a positive number (1 is the paper's choice); got {beta!r}")
    mi = table.measure("mutual_information")
    pool = available_indices(len(table), exclude)
    keys = np.full(len(table), np.nan)  # (N,) NaN stays NaN: ranked last
    values = mi[pool]
    log_mi = np.log(values, out=np.full(pool.size, _LOG_ZERO), where=values > 0)
    gumbel = np.random.default_rng(seed).gumbel(size=pool.size)
    keys[pool] = np.where(np.isnan(values), np.nan, beta * log_mi + gumbel)
    query = rank_descending(keys, pool, k)
    by_mi = ranking_positions(mi, pool, query)
    reasons = tuple(
        f"{describe(MEASURES['mutual_information'], float(mi[i]))}, drawn with probability ∝ MI^{beta:g} "
        f"(PowerBALD, seed {seed}); by MI alone {rank_phrase(position, pool.size)}"
        for i, position in zip(query, by_mi, strict=True)
    )
    return ranked_selection(table, query, mi, reasons, strategy="power_bald", cost_model=cost_model)
