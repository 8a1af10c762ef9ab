"""Series-level ranking (Kuo et al. 2018): a stack of slices is labelled as a whole, so rank the stacks.

A series' score is the sum of its top_k slice scores: a few very uncertain slices make a series worth
reading even if most of it is easy, while the cap keeps long series from winning by length alone.

Which slice score is summed follows the strategy asked for, where the strategy ranks single images by one
(`SERIES_MEASURES`: entropy, BALD's mutual information, variance, the version ensemble's disagreement); the
others (random, CEAL, PowerBALD, TypiClust, ...) choose images by more than one score per image, so their
series lists sum mutual information and each reason says so (`series_measure`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from ceal.service.errors import InvalidInput

from ._ranking import available_indices, check_k, estimate_seconds, rank_descending, rank_phrase
from .cost import AnnotationCostModel
from .table import MEASURES, FloatArray, ScoreTable

__all__ = ["SERIES_MEASURES", "SeriesSelection", "aggregate_series", "rank_series", "series_measure"]

DISAGREEMENT = "version_disagreement"
# The slice score a series list sums, by strategy: the one score each of these ranks single images by.
SERIES_MEASURES: Final[dict[str, str]] = {
    "entropy": "entropy",
    "bald": "mutual_information",
    "variance": "variance",
    "ensemble": DISAGREEMENT,
}
_DEFAULT_MEASURE = "mutual_information"


def series_measure(strategy: str, table: ScoreTable) -> tuple[str, str]:
    """(measure, note) for a series or study list asked with `strategy`: the strategy's own slice score, or
    mutual information with a note saying why (a strategy without one, or an ensemble before a second version
    scored the pool). note is "" when the strategy's score is used."""
    measure = SERIES_MEASURES.get(strategy)
    if measure is None:
        return _DEFAULT_MEASURE, f"{strategy} chooses single images, so series rank by mutual information"
    if measure == DISAGREEMENT and (table.version_disagreement is None or np.isnan(table.version_disagreement).all()):
        return _DEFAULT_MEASURE, "no earlier versions scored this pool yet, so by mutual information"
    return measure, ""


def _slice_scores(table: ScoreTable, measure: str) -> tuple[FloatArray, str]:
    """(the (N,) slice scores called `measure`, words for them): a MEASURES name or the version disagreement."""
    if measure != DISAGREEMENT:
        return table.measure(measure), MEASURES[measure]
    if table.version_disagreement is None:
        raise InvalidInput("this score table has no version disagreement; rank by another measure")
    return table.version_disagreement, "disagreement between the last model versions' masks"


@dataclass(frozen=True)
class SeriesSelection:
    """Series ranked for the human (first = ask first).

    series_keys: the series, ranked; scores: the sum of each one's top-k slice scores; members: each one's
    free slices as table rows, most uncertain first; estimated_seconds: predicted time for all its slices.
    """

    series_keys: tuple[str, ...]
    scores: tuple[float, ...]
    members: tuple[tuple[int, ...], ...]
    reasons: tuple[str, ...]
    estimated_seconds: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.series_keys)


def aggregate_series(
    table: ScoreTable,
    top_k: int = 3,
    *,
    measure: str = "mutual_information",
    exclude: Iterable[int] = frozenset(),
) -> tuple[tuple[str, ...], FloatArray, tuple[tuple[int, ...], ...]]:
    """(series_keys (S,), scores (S,), members (S,)) over the free rows, series in order of first row.

    A series' score is the sum of its top_k finite slice scores by `measure` (missing slices add nothing;
    NaN when none is scored). Excluded slices neither count nor appear; a series with no free slice is
    left out. Without table.series_keys (or for an empty key) each image is a series of its own, keyed by
    its image id.
    """
    if top_k < 1:
        raise InvalidInput(f"top_k must be >= 1 (slices summed per series); got {top_k}")
    values, _ = _slice_scores(table, measure)
    keys = table.series_keys if table.series_keys is not None else table.image_ids
    pool = available_indices(len(table), exclude)
    groups: dict[str, list[int]] = {}
    for i in pool:
        key = keys[i] or table.image_ids[i]
        groups.setdefault(key, []).append(int(i))

    members = tuple(
        tuple(int(i) for i in rank_descending(values, np.array(rows, dtype=np.int64))) for rows in groups.values()
    )
    scores = np.full(len(members), np.nan)  # (S,)
    for s, rows in enumerate(members):
        scored = values[list(rows)]
        scored = scored[np.isfinite(scored)][:top_k]  # rows are sorted, so these are the top ones
        if scored.size:
            scores[s] = float(scored.sum())
    return tuple(groups), scores, members


def rank_series(
    table: ScoreTable,
    k: int,
    *,
    top_k: int = 3,
    measure: str = "mutual_information",
    note: str = "",
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> SeriesSelection:
    """The k series of highest aggregate score (ties to the earlier series, unscored series last). measure: a
    MEASURES name or "version_disagreement"; note: words added to every reason (why this measure)."""
    k = check_k(k)
    keys, scores, members = aggregate_series(table, top_k, measure=measure, exclude=exclude)
    ranked = rank_descending(scores, np.arange(len(keys), dtype=np.int64))[:k]
    values, label = _slice_scores(table, measure)
    why = f" ({note})" if note else ""
    reasons = []
    for p, s in enumerate(ranked):
        counted = min(top_k, int(np.isfinite(values[list(members[s])]).sum()))
        total = "missing (no slice scored)" if math.isnan(scores[s]) else f"{scores[s]:.3g}"
        reasons.append(
            f"{label} summed over its {counted} most uncertain of {len(members[s])} slices: {total}{why}, "
            f"{rank_phrase(p + 1, len(keys), 'series in the pool')}"
        )
    return SeriesSelection(
        series_keys=tuple(keys[s] for s in ranked),
        scores=tuple(float(scores[s]) for s in ranked),
        members=tuple(members[s] for s in ranked),
        reasons=tuple(reasons),
        estimated_seconds=tuple(
            sum(estimate_seconds(table, np.array(members[s], dtype=np.int64), cost_model)) for s in ranked
        ),
    )
