"""int8 export: a tiny trained model passes the fidelity gate; sabotaged calibration is refused."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from ceal.service.engine.loaded import load_model
from ceal.service.metadata import METADATA_FILE, MODEL_FILE
from ceal.trainer.export import ExportError, export_model
from ceal.trainer.quantize import Fidelity, Int8Converter, Int8Settings
from ceal.trainer.train import Dataset, TrainConfig, fit
from ceal.trainer.unet import UNet, UNetConfig
from tests.support.models import HEIGHT, WIDTH, synth_dataset

# The tiny 8-filter model's mutual-information ranking over 12 validation images is fragile under int8: its
# images' scores lie close together, and the Spearman ρ measured here ranged 0.83-0.96 across CPUs and training
# lengths. The default gate (0.95) is measured on the CEAL-size model by `benchmarks/perf_bench.py` (ρ 0.977);
# here the plumbing is under test (the gate runs, records its figures, refuses bad calibration), at 0.8.
SETTINGS = Int8Settings(calibration_images=16, samples=10, min_spearman=0.8)


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset]:
    """28 training cases, 12 validation cases."""
    cases = synth_dataset(40)
    return cases.subset(list(range(28))), cases.subset(list(range(28, 40)))


@pytest.fixture(scope="module")
def trained(data: tuple[Dataset, Dataset]) -> tuple[UNet, dict[str, object]]:
    """A tiny U-Net whose masks depend on the image (a high learning rate; about 2 s of training)."""
    torch.manual_seed(0)
    cfg = TrainConfig(height=HEIGHT, width=WIDTH, epochs=6, batch_size=4, learning_rate=0.01, seed=0)
    unet = UNet(UNetConfig(base_filters=8, depth=3))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine, two spinning threads are many times slower
    try:
        fit(unet, data[0], None, cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    return unet, {"train_config": asdict(cfg)}


def test_int8_export_passes_the_gate_keeps_dropout_and_serves(
    trained: tuple[UNet, dict[str, object]], data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    model, training = trained
    train, val = data
    target = export_model(model, training, tmp_path, "lesion", convert=Int8Converter(train, val, SETTINGS))
    meta = json.loads((target / METADATA_FILE).read_text())
    figures = meta["extra"]["int8"]
    assert meta["precision"] == "int8"
    assert figures["spearman_mutual_information"] >= 0.8 and figures["spearman_entropy"] >= 0.8
    assert figures["dice_fp32"] > 0.1  # a model that segments something, so the Dice gate means something
    assert figures["dice_drop"] <= 0.01 and figures["calibration_images"] == 16
    graph = onnx.load(target / MODEL_FILE).graph
    ops = {n.op_type for n in graph.node}
    assert {"Dropout", "QuantizeLinear", "DequantizeLinear"} <= ops and "BatchNormalization" not in ops
    served = load_model(target, intra_op_threads=1)  # the service's split: Dropout → Mul(mask)
    assert len(served.split.sites) == 1
    x = np.zeros((1, 3, served.meta.input_height, served.meta.input_width), np.float32)
    samples = served.sample(x, 4, np.random.default_rng(0)).probabilities
    assert samples.shape[:2] == (1, 4) and np.ptp(samples, axis=1).max() > 0  # dropout still live


def test_sabotaged_calibration_is_refused_and_nothing_is_written(
    trained: tuple[UNet, dict[str, object]], data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    model, training = trained
    train, val = data
    black = Dataset(train.ids, np.zeros_like(train.images), train.masks)  # activation ranges of a black image
    with pytest.raises(ExportError, match=r"int8 export refused .*(Spearman|Dice)"):
        export_model(model, training, tmp_path, "lesion", convert=Int8Converter(black, val, SETTINGS))
    assert not any(p.name.isdigit() for p in (tmp_path / "lesion").iterdir())


def test_gate_needs_enough_validation_images(data: tuple[Dataset, Dataset]) -> None:
    train, val = data
    with pytest.raises(ExportError, match="at least 3 validation images"):
        Int8Converter(train, val.subset([0, 1]))


@pytest.mark.parametrize(
    ("mi", "entropy", "dice_int8", "refused"),
    [
        (0.96, 0.99, 0.495, []),
        (0.94, 0.99, 0.495, ["mutual information scores 0.940 < 0.95"]),
        (0.96, float("nan"), 0.495, ["entropy scores nan < 0.95"]),
        (0.96, 0.99, 0.480, ["Dice drops by 0.0200"]),
    ],
)
def test_default_gate_thresholds(mi: float, entropy: float, dice_int8: float, refused: list[str]) -> None:
    fid = Fidelity(mi, entropy, dice_fp32=0.5, dice_int8=dice_int8, images=32, samples=20)
    failures = fid.failures(Int8Settings())
    assert len(failures) == len(refused)
    assert all(want in got for want, got in zip(refused, failures, strict=True))
