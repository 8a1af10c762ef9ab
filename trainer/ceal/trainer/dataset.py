"""Load image/mask folders into an in-memory `Dataset` at the training size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ceal.imaging import PreprocessParams
from ceal.trainer.data.folders import find_pairs, load_image, load_mask, resize_pair
from ceal.trainer.train import Dataset


def load_folder(
    images: Path,
    masks: Path,
    height: int,
    width: int,
    *,
    progress: bool = True,
    params: PreprocessParams | None = None,
) -> Dataset:
    """All pairs under `images` / `masks` through the preprocessing contract (`params`, the defaults when
    None), resized to (height, width); masks as class indices."""
    params = params or PreprocessParams()
    pairs = find_pairs(images, masks)
    xs = np.zeros((len(pairs), height, width, 3), np.uint8)
    ys = np.zeros((len(pairs), height, width), np.uint8)
    for i, pair in enumerate(tqdm(pairs, desc="load", unit="img", disable=not progress)):
        assert pair.mask_path is not None
        xs[i], ys[i] = resize_pair(load_image(pair.image_path, params), load_mask(pair.mask_path), height, width)
    return Dataset([p.image_id for p in pairs], xs, ys)
