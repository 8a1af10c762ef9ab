"""The served path inside the simulation: ONNX export → `LoadedModel` → Monte-Carlo scores → a strategy.

Nothing here re-implements the service: inputs go through the engine's `prepare`, samples through
`LoadedModel.sample` (prefix once, suffix T times), image scores through the pool scorer's `score_row`, the
table through the query code's `build_table`, and the choice through the selection registry with the
parameters the query servicer gives each strategy.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.metadata import ModelMetadata
from ceal.service.pool.queries import PSEUDO_PER_LABEL, PSEUDO_WARMUP_ROUNDS, build_table
from ceal.service.pool.scoring import score_row
from ceal.service.selection import AnnotationCostModel, ScoreTable, Selection, get_strategy
from ceal.service.selection.registry import SEEDED_STRATEGIES
from ceal.service.store.base import ImageRecord
from ceal.trainer.export import to_onnx_bytes
from ceal.trainer.train import DEFAULT_MEAN, DEFAULT_STD
from ceal.trainer.unet import UNet

from .config import SimConfig, registry_name
from .data import SimData

__all__ = ["PoolScores", "choose", "score_pool", "serve", "served_masks", "strategy_params"]

IndexArray = npt.NDArray[np.int64]
_BATCH = 16  # images per LoadedModel.sample call


@dataclass(frozen=True)
class PoolScores:
    """Scores of the pool rows `rows` (M,) (data row indices): the table's row j is rows[j].

    masks: uint8 (M, h, w) the served label map (Monte-Carlo mean > 0.5) at the model size: CEAL's pseudo-labels.
    exclude: table rows already labelled (scored for context, as the service's table holds them): never chosen.
    """

    rows: IndexArray
    table: ScoreTable
    masks: npt.NDArray[np.uint8]
    exclude: tuple[int, ...] = ()


def serve(model: UNet, cfg: SimConfig, version: int) -> LoadedModel:
    """Export `model` with dropout live and load it as the service would, single-threaded."""
    meta = ModelMetadata(
        name="simulate",
        version=version,
        input_channels=model.config.in_channels,
        input_height=cfg.height,
        input_width=cfg.width,
        num_classes=model.config.num_classes,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        dropout_rate=model.config.dropout,
    )
    return LoadedModel(meta, to_onnx_bytes(model, cfg.height, cfg.width, mc_dropout=True), intra_op_threads=1)


def _sampled(
    loaded: LoadedModel, images: npt.NDArray[np.uint8], samples: int, rng: np.random.Generator
) -> Iterator[tuple[int, npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
    """(row, samples (T, C, h, w), descriptor (D,)) for each of the (N, h, w, 3) images."""
    for start in range(0, len(images), _BATCH):
        x = np.stack([prepare(image, loaded.meta) for image in images[start : start + _BATCH]])
        out = loaded.sample(x, samples, rng)
        for j in range(len(x)):
            yield start + j, out.probabilities[j], out.descriptors[j]


def _label_map(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Samples (T, C, h, w) → uint8 (h, w): mean > 0.5 for one sigmoid channel, else argmax (as served)."""
    mean = samples.mean(axis=0)
    labels = mean[0] > 0.5 if mean.shape[0] == 1 else mean.argmax(axis=0)
    out: npt.NDArray[np.uint8] = labels.astype(np.uint8)
    return out


def served_masks(
    loaded: LoadedModel, images: npt.NDArray[np.uint8], samples: int, rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """uint8 (N, h, w) label maps of (N, h, w, 3) images, as Predict serves them (at the model size)."""
    masks = np.zeros(images.shape[:3], np.uint8)
    for row, sampled, _ in _sampled(loaded, images, samples, rng):
        masks[row] = _label_map(sampled)
    return masks


def score_pool(
    loaded: LoadedModel,
    data: SimData,
    rows: IndexArray,
    samples: int,
    rng: np.random.Generator,
    labelled: IndexArray | None = None,
) -> PoolScores:
    """Score the free data rows `rows` (pool images only: the test set never reaches a strategy), then the
    `labelled` rows as context, excluded from the choice (suggestive counts their coverage as had)."""
    exclude = tuple(range(len(rows), len(rows) + (0 if labelled is None else len(labelled))))
    rows = rows if labelled is None else np.concatenate([rows, labelled])
    records, score_rows = {}, []
    masks = np.zeros((len(rows), *data.images.shape[1:3]), np.uint8)
    for j, sampled, descriptor in _sampled(loaded, data.images[rows], samples, rng):
        i = int(rows[j])
        image_id = data.ids[i]
        size = (int(data.sizes[i, 0]), int(data.sizes[i, 1]))
        score_rows.append(score_row(loaded, image_id, sampled, descriptor, size))
        records[image_id] = ImageRecord(
            image_id=image_id,
            pool="simulate",
            height=size[0],
            width=size[1],
            channels=3,
            series_key=image_id,
            study_key=image_id,
            slice_index=0,
            dicom=None,
            created_at=0.0,
            dtype="|u1",
        )
        masks[j] = _label_map(sampled)
    return PoolScores(np.asarray(rows, dtype=np.int64), build_table(score_rows, records), masks, exclude)


def arm_seed(*parts: int | str) -> int:
    """A stable 32-bit seed from ints and names (crc32 of names, so not Python's salted hash)."""
    words = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def strategy_params(
    strategy: str,
    table: ScoreTable,
    cfg: SimConfig,
    round_index: int,
    seed: int,
    cost_model: AnnotationCostModel,
    exclude: tuple[int, ...] = (),
) -> tuple[int, dict[str, Any]]:
    """(k, keyword arguments) for `strategy` on a table of free images, as the query servicer sets them.

    SEEDED_STRATEGIES (random, power_bald): a seed per (seed, round). ceal: entropy threshold δ_0 at
    cfg.pseudo_quantile of the free pool (the service: PSEUDO_QUANTILE), tightening by cfg.pseudo_decay · δ_0 a
    round (the service: 0.1), at most cfg.max_pseudo pseudo-labels, none before round PSEUDO_WARMUP_ROUNDS and
    at most PSEUDO_PER_LABEL per human label (the labelled rows are in the table as excluded context). cost: a
    budget of `per_round` images of the free pool's mean predicted annotation time, and k = the pool (the budget
    decides how many).
    suggestive: the service's shortlist unless cfg.suggestive_candidates says otherwise (0: the whole pool).
    """
    name = registry_name(strategy)
    k = cfg.per_round
    if name in SEEDED_STRATEGIES:
        return k, {"seed": arm_seed(seed, round_index, name)}
    if name == "ceal":
        entropy = np.delete(table.entropy, list(exclude))  # the free pool's, as the servicer's
        entropy = entropy[np.isfinite(entropy)]
        delta_0 = float(np.quantile(entropy, cfg.pseudo_quantile)) if len(entropy) else 0.0
        return k, {
            "round_index": round_index,
            "delta_0": delta_0,
            "decay": delta_0 * cfg.pseudo_decay,
            "max_pseudo": cfg.max_pseudo,
            "pseudo_per_label": PSEUDO_PER_LABEL,
            "warmup_rounds": PSEUDO_WARMUP_ROUNDS,
        }
    if name == "suggestive" and cfg.suggestive_candidates is not None:  # free rows only: `len(table)` counts
        # the labelled context rows too, which the strategy excludes, so 0 still means the whole free pool
        return k, {"candidates": max(k, cfg.suggestive_candidates or len(table))}
    if name == "cost_sensitive":
        seconds = cost_model.predict(table.boundary_length, table.components)
        return len(table), {"budget_seconds": cfg.per_round * float(np.mean(seconds))}
    return k, {}


def choose(
    strategy: str,
    scores: PoolScores,
    cfg: SimConfig,
    round_index: int,
    seed: int,
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """Run the service's strategy on the scored free pool; indices address `scores.rows`."""
    model = cost_model or AnnotationCostModel()
    k, params = strategy_params(strategy, scores.table, cfg, round_index, seed, model, scores.exclude)
    if scores.exclude:
        params["exclude"] = scores.exclude
    return get_strategy(registry_name(strategy))(scores.table, k, cost_model=model, **params)
