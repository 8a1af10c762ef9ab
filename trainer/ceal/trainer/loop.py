"""`ceal loop`: one turn of the active-learning loop against a running server.

Export the labels (human, and pseudo on request) from the service → fine-tune the previous checkpoint →
export version N+1 into the models folder the server watches. The server hot-loads it, the old scores go
stale, and the pool is rescored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ceal.client import Client
from ceal.trainer.data.folders import resize_pair
from ceal.trainer.train import Dataset, TrainConfig, train_and_save
from ceal.trainer.unet import load_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopResult:
    human: int
    pseudo: int
    version_dir: Path
    validation_dice: float


@dataclass(frozen=True)
class FetchedLabel:
    """One exported label with its image, resized for training: image uint8 (h, w, 3), mask uint8 (h, w)."""

    image_id: str
    version: int
    source: str  # "human" | "pseudo"
    seconds_spent: float
    image: np.ndarray
    mask: np.ndarray


def _training_image(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = (
            (np.clip(image.astype(np.float32), 0, 1) * 255).astype(np.uint8)
            if image.dtype.kind == "f"
            else ((image / max(int(image.max()), 1) * 255).astype(np.uint8))
        )
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image


def fetch_labels(client: Client, height: int, width: int, *, pool: str = "", pseudo: bool = True) -> list[FetchedLabel]:
    """The service's latest labels (human, and pseudo on request) with their images, resized to (height, width)."""
    sources = ("human", "pseudo") if pseudo else ("human",)
    out = []
    for record in client.export_labels(pool=pool, sources=sources, include_images=True):
        if record.image is None:
            continue
        x, y = resize_pair(_training_image(record.image), record.mask, height, width)
        out.append(FetchedLabel(record.image_id, record.version, record.source, record.seconds_spent, x, y))
    return out


def as_dataset(labels: list[FetchedLabel]) -> Dataset:
    return Dataset(
        [r.image_id for r in labels], np.stack([r.image for r in labels]), np.stack([r.mask for r in labels])
    )


def labels_dataset(
    client: Client, height: int, width: int, *, pool: str = "", pseudo: bool = True
) -> tuple[Dataset, int, int]:
    """The service's labels with their images, resized for training; (dataset, human count, pseudo count)."""
    labels = fetch_labels(client, height, width, pool=pool, pseudo=pseudo)
    if not labels:
        raise SystemExit("the service holds no labels yet: submit some with SubmitLabel first")
    human = sum(r.source == "human" for r in labels)
    return as_dataset(labels), human, len(labels) - human


def run_loop(
    client: Client,
    init: Path,
    out: Path,
    models: Path,
    name: str,
    *,
    epochs: int,
    val: Dataset | None = None,
    pool: str = "",
    pseudo: bool = True,
    learning_rate: float = 5e-4,
) -> LoopResult:
    from ceal.trainer.export import export_model

    model, training = load_checkpoint(init)
    cfg_raw = training.get("train_config", {})
    assert isinstance(cfg_raw, dict)
    cfg = TrainConfig(**{**cfg_raw, "epochs": epochs, "learning_rate": learning_rate})
    data, human, n_pseudo = labels_dataset(client, cfg.height, cfg.width, pool=pool, pseudo=pseudo)
    log.info("fine-tuning on %d human and %d pseudo labels", human, n_pseudo)
    record = train_and_save(data, val, out, cfg, init=model)
    target = export_model(model, record, models, name)
    return LoopResult(human, n_pseudo, target, float(record["validation_dice"]))  # type: ignore[arg-type]
