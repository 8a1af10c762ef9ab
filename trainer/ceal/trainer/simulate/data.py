"""The simulation's data: images and masks at the model size, the pool / test split, the oracle's seconds.

The oracle is the ground-truth mask. What a human label costs is the service's `AnnotationCostModel` on the
ground-truth mask at the image's own size (boundary pixels and components), since that is what a
radiologist traces; the model works at its smaller training size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from ceal.service import postprocess
from ceal.service.selection import AnnotationCostModel
from ceal.trainer.data.folders import find_pairs, load_image, load_mask, resize_pair, split_ids
from ceal.trainer.train import Dataset

from .config import SimConfig, SimulationError

__all__ = ["SimData", "annotation_seconds", "family_sim_data", "load_sim_data", "make_sim_data"]


@dataclass(frozen=True)
class SimData:
    """N images split into a pool (may be queried) and a test set (never queried).

    images: uint8 (N, h, w, 3) and masks: uint8 (N, h, w) class indices at the model size;
    sizes: (N, 2) each image's own (H, W); seconds: (N,) the oracle's annotation time of each image;
    pool, test: ascending row indices, disjoint, together all N rows.
    """

    ids: tuple[str, ...]
    images: npt.NDArray[np.uint8]
    masks: npt.NDArray[np.uint8]
    sizes: npt.NDArray[np.int64]
    seconds: npt.NDArray[np.float64]
    pool: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]

    def dataset(self, rows: npt.NDArray[np.int64] | list[int]) -> Dataset:
        """The rows as a trainer `Dataset` with their true masks."""
        rows = np.asarray(rows, dtype=np.int64)
        return Dataset([self.ids[i] for i in rows], self.images[rows], self.masks[rows])


def annotation_seconds(
    masks: list[npt.NDArray[np.uint8]], model: AnnotationCostModel | None = None
) -> npt.NDArray[np.float64]:
    """(N,) seconds to draw each (H, W) class-index mask by hand: the cost model on its foreground."""
    cost = model or AnnotationCostModel()
    boundary = np.array([postprocess.boundary_length(m != 0) for m in masks], dtype=np.float64)
    components = np.array([postprocess.component_count(m != 0) for m in masks], dtype=np.float64)
    seconds: npt.NDArray[np.float64] = cost.predict(boundary, components)
    return seconds


def make_sim_data(
    ids: list[str],
    images: npt.NDArray[np.uint8],
    masks: npt.NDArray[np.uint8],
    sizes: npt.NDArray[np.int64],
    seconds: npt.NDArray[np.float64],
    cfg: SimConfig,
) -> SimData:
    """Split already-loaded arrays into pool and test (`split_ids` with cfg.split_seed) and check the sizes."""
    test_ids = set(split_ids(ids, cfg.test_fraction, cfg.split_seed)[1])
    test = np.array([i for i, image_id in enumerate(ids) if image_id in test_ids], dtype=np.int64)
    pool = np.array([i for i, image_id in enumerate(ids) if image_id not in test_ids], dtype=np.int64)
    needed = cfg.initial + cfg.per_round
    if len(pool) < needed or len(test) < 1:
        raise SimulationError(
            f"{len(ids)} images leave a pool of {len(pool)} and a test set of {len(test)}; the pool needs at "
            f"least initial + per_round = {needed} images: add images or lower --initial / --per-round"
        )
    return SimData(tuple(ids), images, masks, sizes, seconds, pool, test)


def load_sim_data(images: Path, masks: Path, cfg: SimConfig, *, progress: bool = True) -> SimData:
    """Every image/mask pair of the folders, resized to the model size, with the oracle's seconds."""
    pairs = find_pairs(images, masks)
    xs = np.zeros((len(pairs), cfg.height, cfg.width, 3), np.uint8)
    ys = np.zeros((len(pairs), cfg.height, cfg.width), np.uint8)
    sizes = np.zeros((len(pairs), 2), np.int64)
    full_masks = []
    for i, pair in enumerate(tqdm(pairs, desc="load", unit="img", disable=not progress)):
        assert pair.mask_path is not None  # find_pairs raised otherwise
        image, mask = load_image(pair.image_path), load_mask(pair.mask_path)
        xs[i], ys[i] = resize_pair(image, mask, cfg.height, cfg.width)
        sizes[i] = mask.shape
        full_masks.append(mask)
    seconds = annotation_seconds(full_masks)
    return make_sim_data([p.image_id for p in pairs], xs, ys, sizes, seconds, cfg)


def family_sim_data(cfg: SimConfig) -> SimData:
    """cfg.family_n images of the synthetic family cfg.family (seed cfg.family_seed), drawn in memory at the
    model size (which is then each image's own size: the oracle's seconds are counted there)."""
    from ceal.trainer.data.families import family_arrays

    if not cfg.family:
        raise SimulationError("no synthetic family in the config: pass --family, or --images and --masks")
    ids, images, masks = family_arrays(cfg.family, cfg.family_n, cfg.family_seed, cfg.height, cfg.width)
    sizes = np.tile(np.array([cfg.height, cfg.width], np.int64), (len(ids), 1))
    return make_sim_data(ids, images, masks, sizes, annotation_seconds(list(masks)), cfg)
