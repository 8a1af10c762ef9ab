"""Each model version's predicted masks, kept beside the scores for the version ensemble, on every backend:
stored with the score rows, read back per pool in one call, the newest MASK_VERSIONS per image and model."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest

from ceal.service.engine.loaded import LoadedModel
from ceal.service.pool.scoring import score_row
from ceal.service.store import MASK_VERSIONS, InvalidInput, NewImage, PackedMask, PoolStore, ScoreRow

Pixels = Callable[..., np.ndarray]
Score = Callable[..., ScoreRow]


def _mask(seed: int, shape: tuple[int, int] = (7, 13)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) > 0.5


def _images(store: PoolStore, pixels: Pixels, n: int) -> list[str]:
    return [image_id for image_id, _ in store.register_images("p", [NewImage(pixels(i)) for i in range(n)])]


def test_packed_masks_round_trip_any_width() -> None:
    for width in (1, 8, 13, 64):
        mask = _mask(width, (5, width))
        packed = PackedMask.of(mask)
        assert packed.shape == (5, width) and packed.bits.shape == (5, -(-width // 8))
        np.testing.assert_array_equal(packed.unpack(), mask)
    with pytest.raises(ValueError, match="2-D"):
        PackedMask.of(np.zeros((2, 3, 4)))


def test_masks_are_stored_with_their_scores_and_read_back_per_pool(
    store: PoolStore, pixels: Pixels, score: Score
) -> None:
    a, b, c = _images(store, pixels, 3)
    store.put_scores("p", [score(a, mask=PackedMask.of(_mask(1))), score(b, mask=PackedMask.of(_mask(2))), score(c)])
    store.put_scores("p", [score(a, version=2, mask=PackedMask.of(_mask(3)))])
    masks = store.version_masks("p", "unet")
    assert set(masks) == {a, b}  # c was scored without a mask
    assert list(masks[a]) == [2, 1]  # newest version first
    np.testing.assert_array_equal(masks[a][2].unpack(), _mask(3))
    np.testing.assert_array_equal(masks[a][1].unpack(), _mask(1))
    np.testing.assert_array_equal(masks[b][1].unpack(), _mask(2))
    assert store.version_masks("p", "other") == {} and store.version_masks("q", "unet") == {}
    assert [r.model_version for r in store.score_rows("p", "unet", 2)] == [2]  # scores as before


def test_only_the_newest_versions_are_kept(store: PoolStore, pixels: Pixels, score: Score) -> None:
    (a, b) = _images(store, pixels, 2)
    for version in range(1, MASK_VERSIONS + 3):
        store.put_scores("p", [score(a, version=version, mask=PackedMask.of(_mask(version)))])
    store.put_scores("p", [score(b, version=1, mask=PackedMask.of(_mask(0)))])
    store.put_scores("p", [score(a, version=9, model="other", mask=PackedMask.of(_mask(9)))])
    masks = store.version_masks("p", "unet")
    newest = list(range(MASK_VERSIONS + 2, 2, -1))
    assert list(masks[a]) == newest and list(masks[b]) == [1]  # pruning is per image
    for version in newest:
        np.testing.assert_array_equal(masks[a][version].unpack(), _mask(version))
    assert list(store.version_masks("p", "other")[a]) == [9]  # and per model name


def test_rescoring_a_version_replaces_its_mask(store: PoolStore, pixels: Pixels, score: Score) -> None:
    (a,) = _images(store, pixels, 1)
    store.put_scores("p", [score(a, mask=PackedMask.of(_mask(1)))])
    store.put_scores("p", [score(a, mask=PackedMask.of(_mask(2, (4, 4))))])
    (kept,) = store.version_masks("p", "unet")[a].values()
    np.testing.assert_array_equal(kept.unpack(), _mask(2, (4, 4)))


def test_a_malformed_mask_is_refused_and_nothing_is_written(store: PoolStore, pixels: Pixels, score: Score) -> None:
    a, b = _images(store, pixels, 2)
    bad = PackedMask(width=20, bits=np.zeros((3, 2), np.uint8))  # 20 pixels need 3 bytes a row
    with pytest.raises(InvalidInput, match="PackedMask"):
        store.put_scores("p", [score(a, mask=PackedMask.of(_mask(1))), score(b, mask=bad)])
    assert store.version_masks("p", "unet") == {} and store.score_rows("p", "unet", 1) == []


def test_pool_scoring_rows_carry_the_versions_mask_at_the_model_resolution(store: PoolStore, pixels: Pixels) -> None:
    (a,) = _images(store, pixels, 1)
    model = cast(LoadedModel, SimpleNamespace(meta=SimpleNamespace(name="unet", version=4, resize="stretch")))
    foreground = np.zeros((8, 12), np.float32)
    foreground[2:6, 3:9] = 0.9
    samples = np.stack([foreground, foreground * 0.4, foreground])[:, None]  # (T=3, C=1, 8, 12): mean 0.66
    row = score_row(model, a, samples, np.zeros(4, np.float32), (32, 48))  # the image is 4× the model's size
    assert row.mask is not None and row.mask.shape == (8, 12) and row.mask.bits.nbytes == 8 * 2
    np.testing.assert_array_equal(row.mask.unpack(), foreground > 0)
    store.put_scores("p", [row])
    np.testing.assert_array_equal(store.version_masks("p", "unet")[a][4].unpack(), foreground > 0)
