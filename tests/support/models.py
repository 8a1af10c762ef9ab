"""A small *trained* model, exported the way users export theirs, for tests that need real uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.train import Dataset, TrainConfig, train_and_save
from ceal.trainer.unet import UNet, UNetConfig, load_checkpoint
from tests.support.determinism import deterministic_torch

HEIGHT, WIDTH = 48, 64


def synth_dataset(n: int, seed: int = 0, height: int = HEIGHT, width: int = WIDTH) -> Dataset:
    cases = [make_case(case_rng(seed, i), height, width) for i in range(n)]
    return Dataset(
        [f"case{i:03d}" for i in range(n)],
        np.stack([c.image for c in cases]),
        np.stack([(c.mask > 127).astype(np.uint8) for c in cases]),
    )


def train_tiny(workdir: Path, *, epochs: int = 6, n: int = 32, placement: str = "bottleneck", seed: int = 0) -> Path:
    """Train a tiny U-Net on synthetic lesions; returns the checkpoint folder (about 10 s on 2 cores)."""
    data = synth_dataset(n, seed)
    cfg = TrainConfig(height=HEIGHT, width=WIDTH, epochs=epochs, batch_size=8, seed=seed)
    unet = UNetConfig(base_filters=8, depth=3, dropout=0.5, dropout_placement=placement)  # type: ignore[arg-type]
    ckpt = workdir / f"ckpt-{placement}-{seed}"
    with deterministic_torch():  # the same model under any load; the tests' figures come from it
        train_and_save(data.subset(range(n - 8)), data.subset(range(n - 8, n)), ckpt, cfg, unet, progress=False)
    return ckpt


def export_checkpoint(ckpt: Path, models: Path, name: str = "lesion") -> Path:
    model, training = load_checkpoint(ckpt)
    return export_model(model, training, models, name)


def untrained(placement: str = "bottleneck") -> UNet:
    return UNet(UNetConfig(base_filters=8, depth=3, dropout_placement=placement))  # type: ignore[arg-type]
