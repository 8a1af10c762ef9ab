"""`ceal loop`: one turn of the active-learning loop against a running server.

Export the labels (human, and pseudo on request) from the service → fine-tune the previous checkpoint →
export version N+1 into the models folder the server watches. The server hot-loads it, the old scores go
stale, and the pool is rescored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ceal.client import Client
from ceal.imaging import PreprocessParams
from ceal.trainer.data.folders import resize_pair, to_training_image
from ceal.trainer.train import Dataset, TrainConfig, train_and_save
from ceal.trainer.unet import load_checkpoint

log = logging.getLogger(__name__)
EXPORTED_FILE = "exported.json"  # in a checkpoint folder: the model name and version it was exported as


class LoopError(ValueError):
    """`ceal loop` cannot run as asked; the message says what to change."""


def remember_export(checkpoint: Path, version_dir: Path) -> None:
    """Record in the checkpoint folder which model (models/<name>/<version>/) it was exported as."""
    record = {"name": version_dir.parent.name, "version": int(version_dir.name)}
    (checkpoint / EXPORTED_FILE).write_text(json.dumps(record))


def exported_name(checkpoint: Path) -> str | None:
    """The model name the checkpoint was exported under (`remember_export`), or None if it never was."""
    try:
        record = json.loads((checkpoint / EXPORTED_FILE).read_text())
    except (OSError, ValueError):
        return None
    name = record.get("name") if isinstance(record, dict) else None
    return str(name) if name else None


def model_name_for(checkpoint: Path, given: str | None) -> str:
    """The model name `ceal loop` exports to: the one given, else the one the checkpoint was exported as, so
    the loop never starts a second model by accident. Raises LoopError when neither is known."""
    if given:
        known = exported_name(checkpoint)
        if known and known != given:
            log.warning(
                "checkpoint %s was exported as %r; exporting as %r starts another model", checkpoint, known, given
            )
        return given
    known = exported_name(checkpoint)
    if known is None:
        raise LoopError(
            f"{checkpoint} was never exported with `ceal export`, so its model name is unknown: pass --name, "
            "the model name the server serves"
        )
    return known


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


def fetch_labels(
    client: Client,
    height: int,
    width: int,
    *,
    pool: str = "",
    pseudo: bool = True,
    resize: str = "stretch",
    params: PreprocessParams | None = None,
) -> list[FetchedLabel]:
    """The service's latest labels (human, and pseudo on request) with their images, through the preprocessing
    contract (`params`, the defaults when None) and resized to (height, width) (`resize_pair` mode `resize`)."""
    params = params or PreprocessParams()
    sources = ("human", "pseudo") if pseudo else ("human",)
    out = []
    for record in client.export_labels(pool=pool, sources=sources, include_images=True):
        if record.image is None:
            continue
        x, y = resize_pair(to_training_image(record.image, params), record.mask, height, width, resize)
        out.append(FetchedLabel(record.image_id, record.version, record.source, record.seconds_spent, x, y))
    return out


def as_dataset(labels: list[FetchedLabel]) -> Dataset:
    return Dataset(
        [r.image_id for r in labels], np.stack([r.image for r in labels]), np.stack([r.mask for r in labels])
    )


def labels_dataset(
    client: Client,
    height: int,
    width: int,
    *,
    pool: str = "",
    pseudo: bool = True,
    resize: str = "stretch",
    params: PreprocessParams | None = None,
) -> tuple[Dataset, int, int]:
    """The service's labels with their images, through the preprocessing contract (`params`, the defaults
    when None) and resized for training (`resize_pair` mode `resize`); (dataset, human count, pseudo count)."""
    labels = fetch_labels(client, height, width, pool=pool, pseudo=pseudo, resize=resize, params=params)
    if not labels:
        which = " or ".join(("human", "pseudo") if pseudo else ("human",))
        raise LoopError(
            f"pool {pool or 'default'!r} holds no {which} labels: label some there (ceal pool import, ceal pool "
            "label), or pass --pool with the pool that has them"
        )
    human = sum(r.source == "human" for r in labels)
    return as_dataset(labels), human, len(labels) - human


def unlabelled_pool(
    cfg: TrainConfig, folder: Path | None, labelled: set[str], channels: int
) -> tuple[list[str], np.ndarray] | None:
    """The unlabelled images of `folder` (by file name, those with a label left out), when cfg.semi is set;
    LoopError when semi-supervised training is asked for without a folder."""
    from ceal.trainer.dataset import load_unlabelled

    if not cfg.semi:
        return None
    if folder is None:
        raise LoopError(f"semi-supervised training ({cfg.semi}) needs --unlabelled, a folder of the pool's images")
    params = cfg.params(channels)
    return load_unlabelled(folder, None, cfg.height, cfg.width, resize=cfg.resize, params=params, exclude=labelled)


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
    overrides: dict[str, Any] | None = None,
    unlabelled: Path | None = None,
) -> LoopResult:
    """Fine-tune `init` on the pool's labels and export the next version. overrides: TrainConfig fields that
    replace the checkpoint's (augmentation, semi-supervised settings); unlabelled: a folder of the pool's
    images, trained on (minus the labelled ones) when the config's `semi` is set."""
    from ceal.trainer.export import export_model

    model, training = load_checkpoint(init)
    cfg_raw = training.get("train_config", {})
    assert isinstance(cfg_raw, dict)
    # a checkpoint from before `resize` was recorded has none: it was trained stretched, TrainConfig's default
    cfg = TrainConfig(**{**cfg_raw, **(overrides or {}), "epochs": epochs, "learning_rate": learning_rate})
    data, human, n_pseudo = labels_dataset(
        client,
        cfg.height,
        cfg.width,
        pool=pool,
        pseudo=pseudo,
        resize=cfg.resize,
        params=cfg.params(model.config.in_channels),
    )
    log.info("fine-tuning on %d human and %d pseudo labels", human, n_pseudo)
    pool_images = unlabelled_pool(cfg, unlabelled, set(data.ids), model.config.in_channels)
    record = train_and_save(data, val, out, cfg, init=model, unlabelled=pool_images)
    target = export_model(model, record, models, name)
    remember_export(out, target)
    return LoopResult(human, n_pseudo, target, float(record["validation_dice"]))  # type: ignore[arg-type]
