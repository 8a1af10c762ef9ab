"""perf_bench's fidelity half: a small *trained* model, its int8 gate figures and adaptive-T ranking fidelity.

Speed can be measured on random weights; fidelity cannot (a random U-Net is equally unsure of every image).
The model here is the CEAL layout (depth 4, one Dropout(0.5) at the bottleneck) made thin (base_filters 8)
at 96×128, trained on synthetic lesions for a few epochs on one thread and cached in WORKDIR, so reruns skip
the training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ceal.service.engine.adaptive import AdaptiveRule, sample_adaptive
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.image_reductions import image_scores
from ceal.service.metadata import ModelMetadata
from ceal.service.uncertainty import summarize
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import to_onnx_bytes
from ceal.trainer.quantize import Fidelity, fidelity, quantize_int8
from ceal.trainer.train import Dataset, TrainConfig, train_and_save
from ceal.trainer.unet import UNet, UNetConfig, load_checkpoint

HEIGHT, WIDTH = 96, 128
TRAIN, VALIDATION = 48, 32
UNET = UNetConfig(base_filters=8, depth=4, dropout=0.5)
TRAINING = TrainConfig(height=HEIGHT, width=WIDTH, epochs=10, batch_size=8, learning_rate=0.01, seed=0)
RELATIVE_TOLERANCES = (0.05, 0.1, 0.25, 0.5)  # × the spread (std) of the pool's T = 20 scores
MIN_SAMPLES = (4, 8)  # the rule's floor (adaptive_min_samples): 4 = one jackknife group per sample


@dataclass(frozen=True)
class AdaptiveRow:
    min_samples: int  # the rule's floor: no stopping before this many samples
    relative: float  # tolerance as a fraction of the score spread
    tolerance: float  # absolute, in nats (mean mutual information)
    mean_samples: float
    fewest: int  # the range of T drawn over the validation images
    most: int
    spearman_mutual_information: float
    spearman_entropy: float
    samples: tuple[int, ...]  # T per validation image


@dataclass(frozen=True)
class FidelityReport:
    validation_dice: float
    int8: Fidelity
    noise_floor: tuple[float, float]  # ρ (MI, entropy) of two independent fixed-T runs
    adaptive: tuple[AdaptiveRow, ...]


def synth(n: int, seed: int) -> Dataset:
    cases = [make_case(case_rng(seed, i), HEIGHT, WIDTH) for i in range(n)]
    return Dataset(
        [f"case{i:03d}" for i in range(n)],
        np.stack([c.image for c in cases]),
        np.stack([(c.mask > 127).astype(np.uint8) for c in cases]),
    )


def trained(work: Path) -> tuple[UNet, dict[str, object], Dataset, Dataset]:
    """The cached checkpoint, or train it (one torch thread: fastest on a shared 2-core machine)."""
    train, val = synth(TRAIN, seed=1), synth(VALIDATION, seed=2)
    ckpt = work / "fidelity-ckpt"
    if not (ckpt / "model.pt").is_file():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            train_and_save(train, val, ckpt, TRAINING, UNET, progress=False)
        finally:
            torch.set_num_threads(threads)
    model, record = load_checkpoint(ckpt)
    return model, record, train, val


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan


def _scores(samples: np.ndarray) -> tuple[float, float]:
    s = image_scores(summarize(samples))
    return s[("mutual_information", "mean")], s[("entropy", "mean")]


def adaptive_rows(model: LoadedModel, val: Dataset, samples: int) -> tuple[tuple[float, float], list[AdaptiveRow]]:
    """Adaptive T against fixed T on the same masks (seed i for image i), and the fixed-T noise floor.

    One row per (floor, tolerance) of MIN_SAMPLES × RELATIVE_TOLERANCES, floor-major."""
    features = [model.run_prefix(prepare(image, model.meta)[None]) for image in val.images]
    fixed = [_scores(model.run_suffix(f, samples, np.random.default_rng(i))[0]) for i, f in enumerate(features)]
    again = [
        _scores(model.run_suffix(f, samples, np.random.default_rng(10_000 + i))[0]) for i, f in enumerate(features)
    ]
    mi, entropy = [m for m, _ in fixed], [e for _, e in fixed]
    noise = (_spearman(mi, [m for m, _ in again]), _spearman(entropy, [e for _, e in again]))
    spread = float(np.std(mi))
    rows = []
    for floor in MIN_SAMPLES:
        for relative in RELATIVE_TOLERANCES:
            rule = AdaptiveRule(tolerance=relative * spread, min_samples=floor)
            runs = [sample_adaptive(model, f, samples, np.random.default_rng(i), rule) for i, f in enumerate(features)]
            scored = [_scores(r.probabilities) for r in runs]
            drawn = tuple(r.samples for r in runs)
            rows.append(
                AdaptiveRow(
                    floor,
                    relative,
                    rule.tolerance,
                    float(np.mean(drawn)),
                    min(drawn),
                    max(drawn),
                    _spearman(mi, [m for m, _ in scored]),
                    _spearman(entropy, [e for _, e in scored]),
                    drawn,
                )
            )
    return noise, rows


def report(work: Path, samples: int) -> FidelityReport:
    model, record, train, val = trained(work)
    meta = ModelMetadata(
        name="fidelity",
        version=1,
        input_channels=3,
        input_height=HEIGHT,
        input_width=WIDTH,
        num_classes=1,
        mean=TRAINING.mean,
        std=TRAINING.std,
        dropout_rate=UNET.dropout,
    )
    fp32_bytes = to_onnx_bytes(model, HEIGHT, WIDTH, mc_dropout=True)
    calibration = np.stack([prepare(image, meta) for image in train.images[:32]])
    int8_bytes = quantize_int8(fp32_bytes, meta, calibration)
    fp32 = LoadedModel(meta, fp32_bytes)
    int8 = fidelity(fp32, LoadedModel(meta, int8_bytes), val, samples, seed=0)
    floor, rows = adaptive_rows(fp32, val, samples)
    return FidelityReport(float(record["validation_dice"]), int8, floor, tuple(rows))  # type: ignore[arg-type]


def chosen(rows: tuple[AdaptiveRow, ...], floor: tuple[float, float]) -> AdaptiveRow:
    """The loosest (min_samples, tolerance), i.e. lowest mean T, whose ranking stays within the fixed-T noise floor
    (or ≥ 0.95); ties go to the higher floor, then the tighter tolerance. If none passes, the highest mean T."""
    bar = min(0.95, *floor) if all(math.isfinite(f) for f in floor) else 0.95
    ok = [r for r in rows if r.spearman_mutual_information >= bar and r.spearman_entropy >= bar]
    if not ok:
        return max(rows, key=lambda r: (r.mean_samples, r.min_samples, -r.relative))
    return min(ok, key=lambda r: (r.mean_samples, -r.min_samples, r.relative))
