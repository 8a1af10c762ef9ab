"""The version ensemble's column of a query list: how much the masks that the last model versions predicted
for each scored image disagree (`selection.version_disagreement`, mean pairwise 1 − Dice), from the masks pool
scoring kept (`PoolStore.version_masks`, read once per pool)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ceal.service.selection import ScoreTable, version_disagreement
from ceal.service.selection.ensemble import packed_disagreement
from ceal.service.store.base import MASK_VERSIONS, PackedMask

__all__ = ["ENSEMBLE_STRATEGY", "disagreement_column", "with_version_disagreement"]

ENSEMBLE_STRATEGY = "ensemble"  # the strategy that reads the column (proto STRATEGY_ENSEMBLE)


def disagreement_column(
    image_ids: Sequence[str], masks: Mapping[str, Mapping[int, PackedMask]], served_version: int
) -> npt.NDArray[np.float64] | None:
    """(N,) each image's disagreement between its kept masks of the newest MASK_VERSIONS versions up to
    `served_version` (`masks`: image id → {version: mask}, as `version_masks` returns them); NaN for an image
    with fewer than 2; None when no image has 2 (the strategy then ranks by mutual information).

    Images whose members share one size (the usual case) are computed together on the packed bits; an image
    with a member of another size (a model of another output size) has it resampled (`_stacked`)."""
    column = np.full(len(image_ids), np.nan)
    same_size: dict[tuple[int, int, int], list[tuple[int, list[PackedMask]]]] = {}
    for n, image_id in enumerate(image_ids):
        kept = masks.get(image_id, {})
        members = [kept[v] for v in sorted(kept, reverse=True) if v <= served_version][:MASK_VERSIONS]
        if len(members) < 2:
            continue
        shape = members[0].shape
        if all(member.shape == shape for member in members):
            same_size.setdefault((len(members), *shape), []).append((n, members))
        else:
            column[n] = version_disagreement(_stacked(members))[0]
    for (k, height, width), group in same_size.items():
        bits = np.empty((k, len(group), height, -(-width // 8)), np.uint8)  # (K, N, h, ceil(w / 8))
        for j, (_, members) in enumerate(group):
            for m, member in enumerate(members):
                bits[m, j] = member.bits
        column[[n for n, _ in group]] = packed_disagreement(bits)
    return None if np.isnan(column).all() else column


def with_version_disagreement(
    table: ScoreTable, masks: Mapping[str, Mapping[int, PackedMask]], served_version: int
) -> ScoreTable:
    """`table` with its `version_disagreement` column filled (see `disagreement_column`), or as it is when no
    image has masks of two versions."""
    column = disagreement_column(table.image_ids, masks, served_version)
    return table if column is None else dataclasses.replace(table, version_disagreement=column)


def _stacked(members: list[PackedMask]) -> npt.NDArray[np.bool_]:
    """(K, 1, h, w) the members' masks at the first (newest) one's size; a version whose model has another
    output size is resampled to it (nearest pixel)."""
    height, width = members[0].shape
    out = np.empty((len(members), 1, height, width), bool)
    for k, member in enumerate(members):
        mask = member.unpack()
        if mask.shape != (height, width):
            rows = (np.arange(height) * mask.shape[0]) // height
            cols = (np.arange(width) * mask.shape[1]) // width
            mask = mask[np.ix_(rows, cols)]
        out[k, 0] = mask
    return out
