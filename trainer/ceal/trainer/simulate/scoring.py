"""The served path inside the simulation: ONNX export → `LoadedModel` → Monte-Carlo scores → a strategy.

Nothing here re-implements the service: inputs go through the engine's `prepare`, samples through
`LoadedModel.sample` (prefix once, suffix T times), image scores through the engine's `image_scores` (what
pool scoring stores), the table through `selection.scores.score_table` (what the query code ranks), and the
choice through the query servicer's `selection.policy.QueryPolicy`, with the simulation's differences as
explicit policy fields (`sim_policy`). No store types: the trainer imports neither `pool/` nor `store/`.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.engine.scores import image_scores
from ceal.service.metadata import ModelMetadata
from ceal.service.selection import AnnotationCostModel, ScoreTable, Selection
from ceal.service.selection.policy import STRATEGY_SPECS, QueryPlan, QueryPolicy
from ceal.service.selection.scores import ImageScores, score_table
from ceal.trainer.export import to_onnx_bytes
from ceal.trainer.train import DEFAULT_MEAN, DEFAULT_STD
from ceal.trainer.unet import UNet

from .config import SimConfig, registry_name
from .data import SimData

__all__ = [
    "PoolScores",
    "choose",
    "label_map",
    "plan",
    "sampled",
    "score_pool",
    "serve",
    "served_masks",
    "sim_policy",
    "strategy_params",
]

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
    """Export `model` with dropout live and load it as the service would, single-threaded. Its metadata carries
    the preprocessing contract (for the simulation's uint8 images at the model size it prepares the same input,
    bit for bit, as the pre-contract path it used to take, and the service logs no legacy warning)."""
    meta = ModelMetadata.with_contract(
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


def sampled(
    loaded: LoadedModel, images: npt.NDArray[np.uint8], samples: int, rng: np.random.Generator
) -> Iterator[tuple[int, npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
    """(row, samples (T, C, h, w), descriptor (D,)) for each of the (N, h, w, 3) images."""
    for start in range(0, len(images), _BATCH):
        x = np.stack([prepare(image, loaded.meta) for image in images[start : start + _BATCH]])
        out = loaded.sample(x, samples, rng)
        for j in range(len(x)):
            yield start + j, out.probabilities[j], out.descriptors[j]


def label_map(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
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
    for row, drawn, _ in sampled(loaded, images, samples, rng):
        masks[row] = label_map(drawn)
    return masks


def score_pool(
    loaded: LoadedModel,
    data: SimData,
    rows: IndexArray,
    samples: int,
    rng: np.random.Generator,
    labelled: IndexArray | None = None,
    disagreement: npt.NDArray[np.float64] | None = None,
) -> PoolScores:
    """Score the free data rows `rows` (pool images only: the test set never reaches a strategy), then the
    `labelled` rows as context, excluded from the choice (suggestive counts their coverage as had).
    disagreement: (N,) every data row's version disagreement (`members`), the table's column when given."""
    exclude = tuple(range(len(rows), len(rows) + (0 if labelled is None else len(labelled))))
    rows = rows if labelled is None else np.concatenate([rows, labelled])
    scored: list[ImageScores] = []
    masks = np.zeros((len(rows), *data.images.shape[1:3]), np.uint8)
    for j, drawn, descriptor in sampled(loaded, data.images[rows], samples, rng):
        i = int(rows[j])
        size = (int(data.sizes[i, 0]), int(data.sizes[i, 1]))
        scored.append(image_scores(loaded, data.ids[i], drawn, descriptor, size))
        masks[j] = label_map(drawn)
    table = score_table(scored, [row.image_id for row in scored])  # each image its own series
    if disagreement is not None:
        table = dataclasses.replace(table, version_disagreement=disagreement[rows])
    return PoolScores(np.asarray(rows, dtype=np.int64), table, masks, exclude)


def arm_seed(*parts: int | str) -> int:
    """A stable 32-bit seed from ints and names (crc32 of names, so not Python's salted hash)."""
    words = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def sim_policy(cfg: SimConfig) -> QueryPolicy:
    """The query servicer's policy with the simulation's differences: CEAL's δ_0 quantile and decay from the
    config (the service's by default), a cost-sensitive budget of `per_round` images of the table's mean
    predicted annotation time (the service takes the request's), and suggestive's shortlist when
    cfg.suggestive_candidates is set (0: the whole pool)."""
    return QueryPolicy(
        pseudo_quantile=cfg.pseudo_quantile,
        pseudo_decay=cfg.pseudo_decay,
        budget_images=cfg.per_round,
        candidates=cfg.suggestive_candidates,
    )


def plan(
    strategy: str,
    table: ScoreTable,
    cfg: SimConfig,
    round_index: int,
    seed: int,
    cost_model: AnnotationCostModel,
    exclude: tuple[int, ...] = (),
) -> QueryPlan:
    """The policy's call for `strategy` in round `round_index` of arm `seed`, with k = cfg.per_round: a seed
    per (seed, round, strategy) for the seeded strategies, at most cfg.max_pseudo CEAL pseudo-labels (the
    labelled rows `exclude` are in the table as context, so CEAL's per-label cap counts them)."""
    name = registry_name(strategy)
    seeded = name in STRATEGY_SPECS and STRATEGY_SPECS[name].seeded
    return sim_policy(cfg).plan(
        name,
        table,
        cfg.per_round,
        exclude=exclude,
        round_index=round_index,
        seed=arm_seed(seed, round_index, name) if seeded else 0,
        max_pseudo=cfg.max_pseudo,
        cost_model=cost_model,
    )


def strategy_params(
    strategy: str,
    table: ScoreTable,
    cfg: SimConfig,
    round_index: int,
    seed: int,
    cost_model: AnnotationCostModel,
    exclude: tuple[int, ...] = (),
) -> tuple[int, dict[str, Any]]:
    """(k, keyword arguments) of `plan`: what the strategy is called with, besides exclude and cost_model."""
    chosen = plan(strategy, table, cfg, round_index, seed, cost_model, exclude)
    return chosen.k, dict(chosen.params)


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
    return plan(strategy, scores.table, cfg, round_index, seed, model, scores.exclude).run(model)
