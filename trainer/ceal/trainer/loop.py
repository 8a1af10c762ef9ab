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
from ceal.imaging import PreprocessParams
from ceal.trainer.data.folders import resize_pair, to_training_image
from ceal.trainer.train import Dataset, TrainConfig, train_and_save
from ceal.trainer.unet import load_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopResult:
    human: int
    pseudo: int
    version_dir: Path
    validation_dice: float


def labels_dataset(
    client: Client,
    height: int,
    width: int,
    *,
    pool: str = "",
    pseudo: bool = True,
    params: PreprocessParams | None = None,
) -> tuple[Dataset, int, int]:
    """The service's labels with their images, through the preprocessing contract (`params`, the defaults
    when None) and resized for training; (dataset, human count, pseudo count)."""
    params = params or PreprocessParams()
    sources = ("human", "pseudo") if pseudo else ("human",)
    ids, images, masks, counts = [], [], [], {"human": 0, "pseudo": 0}
    for record in client.export_labels(pool=pool, sources=sources, include_images=True):
        if record.image is None:
            continue
        image = to_training_image(record.image, params)
        x, y = resize_pair(image, record.mask, height, width)
        ids.append(record.image_id)
        images.append(x)
        masks.append(y)
        counts[record.source] += 1
    if not ids:
        raise SystemExit("the service holds no labels yet: submit some with SubmitLabel first")
    return Dataset(ids, np.stack(images), np.stack(masks)), counts["human"], counts["pseudo"]


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
    data, human, n_pseudo = labels_dataset(
        client, cfg.height, cfg.width, pool=pool, pseudo=pseudo, params=cfg.params(model.config.in_channels)
    )
    log.info("fine-tuning on %d human and %d pseudo labels", human, n_pseudo)
    record = train_and_save(data, val, out, cfg, init=model)
    target = export_model(model, record, models, name)
    return LoopResult(human, n_pseudo, target, float(record["validation_dice"]))  # type: ignore[arg-type]
