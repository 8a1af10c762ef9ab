"""The `ensemble` query list over a real store (every backend): ranked by the disagreement between the masks
the last model versions predicted, once two versions scored the pool; by mutual information before."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.pool.ensemble import disagreement_column
from ceal.service.pool.queries import QueryRequest, query_list
from ceal.service.store import NewImage, PackedMask, PoolStore, ScoreRow

Pixels = Callable[..., np.ndarray]
Score = Callable[..., ScoreRow]
REQUEST = QueryRequest("p", lease_seconds=60.0, strategy="ensemble", k=5)


def _square(shift: int) -> PackedMask:
    """A 4 × 4 square in an 8 × 8 mask, `shift` pixels right of the corner (4: disjoint from shift 0)."""
    mask = np.zeros((8, 8), bool)
    mask[:4, shift : shift + 4] = True
    return PackedMask.of(mask)


def _pool(store: PoolStore, pixels: Pixels, score: Score, versions: int) -> list[str]:
    """Images a-d, most uncertain by mutual information first; versions 1 and 2 predict the same square for
    a and ever more shifted squares for b, c, d (d's disagree most); e, the most uncertain, only has a mask of
    the last version. Only the first `versions` versions are scored."""
    ids = [i for i, _ in store.register_images("p", [NewImage(pixels(n)) for n in range(5)])]
    mi = {ids[0]: 0.4, ids[1]: 0.3, ids[2]: 0.2, ids[3]: 0.1, ids[4]: 0.9}
    for version in range(1, versions + 1):
        rows = []
        for n, image_id in enumerate(ids):
            mask = None if n == 4 and version == 1 else _square(0 if version == 1 else n)
            rows.append(score(image_id, version=version, mutual_information=mi[image_id], mask=mask))
        store.put_scores("p", rows)
    return ids


def test_two_versions_rank_by_their_masks_disagreement_not_mutual_information(
    store: PoolStore, pixels: Pixels, score: Score
) -> None:
    a, b, c, d, e = _pool(store, pixels, score, versions=2)
    result = query_list(store, "unet", 2, REQUEST)
    assert [item.record.image_id for item in result.items] == [d, c, b, a, e]  # MI alone: e, a, b, c, d
    assert [item.score for item in result.items[:4]] == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert all("disagreement between the last model versions' masks" in item.reason for item in result.items)


def test_one_version_keeps_the_mutual_information_fallback(store: PoolStore, pixels: Pixels, score: Score) -> None:
    a, b, c, d, e = _pool(store, pixels, score, versions=1)
    result = query_list(store, "unet", 1, REQUEST)
    assert [item.record.image_id for item in result.items] == [e, a, b, c, d]
    assert all("no earlier versions scored this pool yet" in item.reason for item in result.items)


def test_other_strategies_do_not_read_the_masks(store: PoolStore, pixels: Pixels, score: Score) -> None:
    a, b, c, d, e = _pool(store, pixels, score, versions=2)
    result = query_list(store, "unet", 2, QueryRequest("p", lease_seconds=60.0, strategy="bald", k=5))
    assert [item.record.image_id for item in result.items] == [e, a, b, c, d]


def test_the_column_uses_the_newest_versions_up_to_the_served_one() -> None:
    masks = {
        "x": {3: _square(4), 2: _square(0), 1: _square(2)},
        "y": {2: _square(0)},
    }
    # served v2: v2 against v1 only (v3, newer than what is served, is left out); y has one version: NaN
    column = disagreement_column(["x", "y", "z"], masks, served_version=2)
    assert column is not None
    assert column[0] == pytest.approx(0.5) and np.isnan(column[1:]).all()
    assert disagreement_column(["y", "z"], masks, served_version=2) is None


def test_a_version_of_another_output_size_is_resampled_to_the_newest() -> None:
    small = np.zeros((4, 4), bool)
    small[:2, :2] = True  # the same square at half the resolution
    masks = {"x": {2: _square(0), 1: PackedMask.of(small)}}
    column = disagreement_column(["x"], masks, served_version=2)
    assert column is not None and column[0] == pytest.approx(0.0)


def test_a_series_list_sums_the_disagreement_too(store: PoolStore, pixels: Pixels, score: Score) -> None:
    a, b, c, d, e = _pool(store, pixels, score, versions=2)  # each image a series of its own
    series = dataclasses.replace(REQUEST, level="series")
    result = query_list(store, "unet", 2, series)
    assert [item.record.image_id for item in result.items] == [d, c, b, a, e]  # by MI: e, a, b, c, d
    assert "disagreement between the last model versions' masks summed" in result.items[0].reason


def test_a_series_list_before_a_second_version_says_why_it_ranks_by_mutual_information(
    store: PoolStore, pixels: Pixels, score: Score
) -> None:
    a, b, c, d, e = _pool(store, pixels, score, versions=1)
    result = query_list(store, "unet", 1, dataclasses.replace(REQUEST, level="series"))
    assert [item.record.image_id for item in result.items] == [e, a, b, c, d]
    assert all("no earlier versions scored this pool yet" in item.reason for item in result.items)
