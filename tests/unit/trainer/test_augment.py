"""Per-sample augmentation: masks move with their images, the same seed gives the same batches."""

from __future__ import annotations

import numpy as np
import pytest

from ceal.trainer.augment import AUGMENT_PRESETS, Augmenter, augment_params, augmentation_record
from ceal.trainer.train import TrainConfig


def _pairs(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Gray images whose pixels are the mask × 255 (so the image says where the mask must be)."""
    rng = np.random.default_rng(0)
    masks = np.zeros((n, 32, 48), np.uint8)
    for i in range(n):
        y, x, h, w = rng.integers(2, 14), rng.integers(2, 24), rng.integers(6, 16), rng.integers(6, 20)
        masks[i, y : y + h, x : x + w] = 1
    images = np.repeat((masks * 255)[..., None], 3, axis=3).astype(np.uint8)
    return images, masks


def test_masks_are_transformed_with_their_images() -> None:
    params = augment_params("standard")
    assert params is not None
    images, masks = _pairs()
    x, y = Augmenter(params, seed=1).batch(images, masks)
    assert x.shape == images.shape and y.shape == masks.shape and y.dtype == np.uint8
    agree = ((x[..., 0] > 127) == (y > 0)).mean(axis=(1, 2))
    assert agree.min() > 0.93  # only the interpolated edge pixels may differ
    moved = [(y[i] != masks[i]).mean() > 0.01 for i in range(len(y))]
    assert sum(moved) >= 4  # the geometry did change most pairs
    assert set(np.unique(y)) <= {0, 1}  # nearest-neighbour masks stay labels


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    params = augment_params("standard")
    assert params is not None
    images, masks = _pairs(8)
    a = [Augmenter(params, seed=5).batch(images, masks) for _ in range(2)]
    assert np.array_equal(a[0][0], a[1][0]) and np.array_equal(a[0][1], a[1][1])
    b = Augmenter(params, seed=6).batch(images, masks)
    assert not np.array_equal(a[0][0], b[0])


def test_presets_are_checked_and_recorded() -> None:
    with pytest.raises(ValueError, match="unknown augmentation 'heavy'; choose one of none, flips, standard"):
        augment_params("heavy")
    with pytest.raises(ValueError, match="unknown augmentation"):
        TrainConfig(augmentation="heavy")
    assert augmentation_record("standard")["rotate"] == 20.0 and augmentation_record("flips")["preset"] == "flips"
    assert augment_params("flips") is None and set(AUGMENT_PRESETS) == {"none", "flips", "standard"}
