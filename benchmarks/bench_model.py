"""The trained CEAL-size model every benchmark measures: trained once on synthetic lesions, cached in runs/bench/.

    .venv/bin/python benchmarks/bench_model.py [--placement bottleneck last_decoder] [--workdir runs/bench]

The CEAL layout (filters 32..512, depth 4, Dropout(0.5)) at 192×240, with the dropout at the bottleneck
(CEAL's) or only after the last decoder block (`last_decoder`, a stochastic suffix of the 1×1 head alone).
Training is small enough for a shared 2-core CPU (TRAIN synthetic cases, EPOCHS epochs, batch 4, Adam, one
torch thread: about 0.65 s an image a step there, ~10 minutes a placement) and is cached: the checkpoint
folder's name carries the settings, so a change trains anew and a rerun loads. `make bench` (run_all.py)
calls `ensure` through perf_bench.py and pool_bench.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ceal.service.metadata import ModelMetadata
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import to_onnx_bytes
from ceal.trainer.placements import PLACEMENTS
from ceal.trainer.train import Dataset, TrainConfig, dice_score, train_and_save
from ceal.trainer.unet import UNet, UNetConfig, load_checkpoint

HEIGHT, WIDTH = 192, 240
TRAIN, VALIDATION, EPOCHS = 160, 32, 5
TRAINING = TrainConfig(height=HEIGHT, width=WIDTH, epochs=EPOCHS, batch_size=4, learning_rate=1e-3, seed=0)


def config(placement: str, base_filters: int = 32) -> UNetConfig:
    return UNetConfig(base_filters=base_filters, depth=4, dropout=0.5, dropout_placement=placement)  # type: ignore[arg-type]


def synth(n: int, seed: int, height: int = HEIGHT, width: int = WIDTH) -> Dataset:
    cases = [make_case(case_rng(seed, i), height, width) for i in range(n)]
    return Dataset(
        [f"case{i:03d}" for i in range(n)],
        np.stack([c.image for c in cases]),
        np.stack([(c.mask > 127).astype(np.uint8) for c in cases]),
    )


@dataclass(frozen=True)
class BenchModel:
    """A trained bench model: its torch weights, ONNX bytes, metadata and validation set."""

    placement: str
    model: UNet
    onnx: bytes
    meta: ModelMetadata
    validation_dice: float
    chance_dice: float  # the better Dice of calling every pixel foreground or every pixel background
    seconds: float  # training time, when it was trained
    val: Dataset


def folder(work: Path, placement: str, base_filters: int = 32) -> Path:
    return work / f"ceal-{placement}-f{base_filters}-n{TRAIN}-e{EPOCHS}"


def metadata(name: str, unet: UNetConfig, height: int = HEIGHT, width: int = WIDTH) -> ModelMetadata:
    return ModelMetadata(
        name=name,
        version=1,
        input_channels=3,
        input_height=height,
        input_width=width,
        num_classes=1,
        mean=TRAINING.mean,
        std=TRAINING.std,
        dropout_rate=unet.dropout,
        extra={"unet": unet.to_json()},
    )


def ensure(work: Path, placement: str, base_filters: int = 32, *, log: bool = True) -> BenchModel:
    """Load the cached model of `placement`, or train it first (one torch thread)."""
    ckpt = folder(work, placement, base_filters)
    val = synth(VALIDATION, seed=2)
    if not (ckpt / "model.pt").is_file():
        if log:
            print(f"training the {placement} bench model into {ckpt} (cached for later runs)", flush=True)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            train_and_save(synth(TRAIN, seed=1), val, ckpt, TRAINING, config(placement, base_filters), progress=False)
        finally:
            torch.set_num_threads(threads)
    model, record = load_checkpoint(ckpt)
    chance = max(dice_score(np.full(val.masks.shape, fill, bool), val.masks > 0) for fill in (True, False))
    meta = metadata(f"ceal-{placement}", model.config)
    onnx_file = ckpt / "model.onnx"
    if not onnx_file.is_file():
        onnx_file.write_bytes(to_onnx_bytes(model, HEIGHT, WIDTH, mc_dropout=True))
    dice = float(record["validation_dice"])  # type: ignore[arg-type]
    return BenchModel(
        placement,
        model,
        onnx_file.read_bytes(),
        meta,
        dice,
        chance,
        float(record["seconds"]),
        val,  # type: ignore[arg-type]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placement", nargs="+", choices=PLACEMENTS, default=["bottleneck", "last_decoder"])
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench"))
    args = parser.parse_args(argv)
    for placement in args.placement:
        started = time.perf_counter()
        bench = ensure(args.workdir, placement)
        summary = {
            "placement": placement,
            "validation_dice": round(bench.validation_dice, 4),
            "chance_dice": round(bench.chance_dice, 4),
            "training_seconds": bench.seconds,
            "this_call_seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
