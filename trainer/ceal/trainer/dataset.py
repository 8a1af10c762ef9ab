"""Load image/mask folders into an in-memory `Dataset` at the training size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ceal.imaging import PreprocessParams
from ceal.trainer.data.folders import DatasetError, find_pairs, load_image, load_mask, resize_pair
from ceal.trainer.train import Dataset


def load_folder(
    images: Path,
    masks: Path,
    height: int,
    width: int,
    *,
    progress: bool = True,
    allow_unlabelled: bool = False,
    resize: str = "stretch",
    params: PreprocessParams | None = None,
) -> Dataset:
    """All pairs under `images` / `masks` through the preprocessing contract (`params`, the defaults when
    None), resized to (height, width) (`resize_pair` mode `resize`); masks as class indices. With
    allow_unlabelled, images without a mask are left out (DatasetError when none has one)."""
    params = params or PreprocessParams()
    pairs = [p for p in find_pairs(images, masks, allow_unlabelled=allow_unlabelled) if p.mask_path is not None]
    if not pairs:
        raise DatasetError(f"no image in {images} has a mask in {masks}: add masks, or point --masks at them")
    xs = np.zeros((len(pairs), height, width, 3), np.uint8)
    ys = np.zeros((len(pairs), height, width), np.uint8)
    for i, pair in enumerate(tqdm(pairs, desc="load", unit="img", disable=not progress)):
        assert pair.mask_path is not None
        image = load_image(pair.image_path, params)
        xs[i], ys[i] = resize_pair(image, load_mask(pair.mask_path), height, width, resize)
    return Dataset([p.image_id for p in pairs], xs, ys)


def load_unlabelled(
    images: Path,
    masks: Path | None,
    height: int,
    width: int,
    *,
    resize: str = "stretch",
    params: PreprocessParams | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """(ids, uint8 (N, height, width, 3)) of the images under `images` that have no mask in `masks` (all of
    them without `masks`) and are not in `exclude`: the unlabelled pool for semi-supervised training."""
    params = params or PreprocessParams()
    pairs = find_pairs(images, masks if masks is not None else images, allow_unlabelled=True)
    chosen = [p for p in pairs if (masks is None or p.mask_path is None) and p.image_id not in exclude]
    xs = np.zeros((len(chosen), height, width, 3), np.uint8)
    for i, pair in enumerate(tqdm(chosen, desc="unlabelled", unit="img", disable=not progress)):
        image = load_image(pair.image_path, params)
        xs[i], _ = resize_pair(image, np.zeros(image.shape[:2], np.uint8), height, width, resize)
    return [p.image_id for p in chosen], xs
