"""Fixtures for the engine tests, independent of tests/conftest.py: a tiny *trained* U-Net exported the
way users export theirs, loaded for serving, and realistic inputs for it.

Training takes about 3 s (one thread) and happens once per session; tests that write into a models folder
copy the exported version into their own tmp folder (`copy_version`) or export again from `TinyModel.unet`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from ceal.service.engine.loaded import LoadedModel, load_model
from ceal.service.engine.preprocess import prepare
from ceal.service.metadata import METADATA_FILE
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.placements import DropoutPlacement
from ceal.trainer.train import Dataset, TrainConfig, fit
from ceal.trainer.unet import UNet, UNetConfig
from tests.support.determinism import deterministic_torch

HEIGHT, WIDTH = 48, 64
CASES = 24
VALIDATION = 4
NAME = "lesion"
# One onnxruntime thread per session: several engineers share 2 cores, and results must not depend on it.
THREADS = 1


@dataclass(frozen=True)
class TinyModel:
    """The trained U-Net, its training record, the exported `models/lesion/1` folder and the cases."""

    unet: UNet
    training: dict[str, object]
    directory: Path  # read-only: copy it before changing anything
    images: npt.NDArray[np.uint8]  # (N, H, W, 3) synthetic dermoscopy cases at the training size


def train_config() -> TrainConfig:
    # A high learning rate so that six epochs give a model whose predictions depend on the image.
    return TrainConfig(height=HEIGHT, width=WIDTH, epochs=6, batch_size=4, learning_rate=0.01, seed=0)


def training_record(cfg: TrainConfig) -> dict[str, object]:
    """The minimal training record `export_model` reads (the input size and normalisation)."""
    return {"train_config": asdict(cfg)}


def export_untrained(models: Path, placement: DropoutPlacement, name: str = NAME, seed: int = 0) -> Path:
    """Export a randomly initialised (seeded) U-Net with `placement` dropout; returns its version folder."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = UNet(UNetConfig(base_filters=8, depth=3, dropout_placement=placement))
    return export_model(unet, training_record(train_config()), models, name)


def copy_version(source: Path, models: Path, version: int, name: str = NAME) -> Path:
    """Copy an exported version folder to `models/name/version`, its metadata saying that version."""
    target = models / name / str(version)
    shutil.copytree(source, target)
    meta = json.loads((target / METADATA_FILE).read_text())
    meta["version"] = version
    (target / METADATA_FILE).write_text(json.dumps(meta))
    return target


def load(directory: Path) -> LoadedModel:
    return load_model(directory, intra_op_threads=THREADS)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    cases = [make_case(case_rng(0, i), HEIGHT, WIDTH) for i in range(CASES)]
    data = Dataset(
        [f"case{i:03d}" for i in range(CASES)],
        np.stack([c.image for c in cases]),
        np.stack([(c.mask > 127).astype(np.uint8) for c in cases]),
    )
    cfg = train_config()
    train, val = data.subset(list(range(CASES - VALIDATION))), data.subset(list(range(CASES - VALIDATION, CASES)))
    # one thread, deterministic kernels, a seeded initialisation: the same model under any load and whichever
    # tests ran before (the global generator's state is not the fixture's to inherit)
    with deterministic_torch(seed=0):
        unet = UNet(UNetConfig(base_filters=8, depth=3, dropout=0.5, dropout_placement="bottleneck"))
        history = fit(unet, train, val, cfg, progress=False)
    training = {**training_record(cfg), "validation_dice": history[-1]["val_dice"]}
    directory = export_model(unet, training, tmp_path_factory.mktemp("models"), NAME)
    return TinyModel(unet, training, directory, data.images)


@pytest.fixture(scope="session")
def loaded_model(tiny_model: TinyModel) -> LoadedModel:
    """The trained model loaded for serving (whole graph and prefix/suffix split)."""
    return load(tiny_model.directory)


@pytest.fixture(scope="session")
def model_inputs(tiny_model: TinyModel, loaded_model: LoadedModel) -> npt.NDArray[np.float32]:
    """The validation cases as model input: float32 (4, 3, H, W)."""
    images = tiny_model.images[-VALIDATION:]
    return np.stack([prepare(image, loaded_model.meta) for image in images])
