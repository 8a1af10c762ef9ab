"""Ensemble-of-versions uncertainty: the last K model versions as ensemble members, an image scored by how
much their masks disagree (mean pairwise 1 − Dice), the measure the segmentation-QC literature finds the best
predictor of failure (e.g. Jungo & Reyes 2019; Mehrtash et al. 2020 on ensembles against MC dropout).

`version_disagreement` computes the score from the members' masks; the table carries it as the column
`version_disagreement`; `ensemble_selection` ranks by it. A pool scored by one version only (no history yet)
has no such column: the strategy then ranks by mutual information (BALD) and says so in each reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import combinations

import numpy as np
import numpy.typing as npt

from ceal.service.errors import InvalidInput

from ._ranking import available_indices, check_k, describe, rank_descending, rank_phrase, ranked_selection
from .cost import AnnotationCostModel
from .table import MEASURES, ScoreTable, Selection

__all__ = ["ensemble_selection", "packed_disagreement", "version_disagreement"]


def version_disagreement(masks: npt.NDArray[np.integer] | npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """(N,) mean over member pairs of 1 − Dice of the foreground, from masks (K, N, H, W) of K >= 2 members;
    two empty masks agree (0)."""
    fg = np.asarray(masks) != 0
    if fg.ndim != 4 or fg.shape[0] < 2:
        raise InvalidInput(f"need masks (K, N, H, W) of at least 2 versions; got shape {fg.shape}")
    return _mean_pairwise(fg.sum(axis=(2, 3)), lambda a, b: (fg[a] & fg[b]).sum(axis=(1, 2)))


def packed_disagreement(bits: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """`version_disagreement` of masks kept as bits: (K, N, H, ceil(W / 8)) uint8, each row `np.packbits` of a
    mask row (its padding bits 0, as packbits leaves them). Counts set bits without unpacking."""
    if bits.ndim != 4 or bits.shape[0] < 2 or bits.dtype != np.uint8:
        raise InvalidInput(f"need packed masks (K, N, H, W/8) uint8 of at least 2 versions; got {bits.shape}")
    area = np.bitwise_count(bits).sum(axis=(2, 3), dtype=np.int64)
    return _mean_pairwise(area, lambda a, b: np.bitwise_count(bits[a] & bits[b]).sum(axis=(1, 2), dtype=np.int64))


def _mean_pairwise(
    area: npt.NDArray[np.integer], overlap: Callable[[int, int], npt.NDArray[np.integer]]
) -> npt.NDArray[np.float64]:
    """(N,) mean over member pairs (a, b) of 1 − 2 · overlap(a, b) / (area[a] + area[b]); area: (K, N) each
    member's foreground pixels; 0 where both are empty."""
    k = area.shape[0]
    out = np.zeros(area.shape[1], np.float64)
    for a, b in combinations(range(k), 2):
        total = area[a] + area[b]
        out += np.where(total == 0, 0.0, 1.0 - 2.0 * overlap(a, b) / np.maximum(total, 1))
    disagreement: npt.NDArray[np.float64] = out / (k * (k - 1) / 2)
    return disagreement


def ensemble_selection(
    table: ScoreTable,
    k: int,
    *,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """The k free rows whose model versions disagree most (highest `version_disagreement`, ties to the lower
    index, NaN last); by mutual information when the table has no version disagreement."""
    k = check_k(k)
    pool = available_indices(len(table), exclude)
    column = table.version_disagreement
    if column is None or np.isnan(column[pool]).all():
        values = table.measure("mutual_information")
        label = f"{MEASURES['mutual_information']} (no earlier versions scored this pool yet)"
    else:
        values, label = column, "disagreement between the last model versions' masks (1 − Dice)"
    query = rank_descending(values, pool, k)
    reasons = tuple(
        f"{describe(label, float(values[i]))}, {rank_phrase(p + 1, pool.size)}" for p, i in enumerate(query)
    )
    return ranked_selection(table, query, values, reasons, strategy="ensemble", cost_model=cost_model)
