"""ONNX export with Monte-Carlo dropout kept live, parity checks, and versioned model folders.

Export recipe: model in eval mode (BatchNorm frozen) with only the dropout layers in train mode,
`TrainingMode.PRESERVE`, TorchScript exporter. `TrainingMode.TRAINING` would export BatchNorm with batch
statistics.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from ceal.service.metadata import METADATA_FILE, MODEL_FILE, ModelMetadata
from ceal.service.runtime import make_session
from ceal.trainer.unet import ProbabilityHead, UNet, set_mc_dropout

log = logging.getLogger(__name__)

OPSET = 17
PARITY_TOLERANCE = 1e-4

# Turns the checked fp32 ONNX model and its metadata into what is written (e.g. `quantize.Int8Converter`);
# raises ExportError to refuse, and then nothing is written.
Converter = Callable[[bytes, ModelMetadata], tuple[bytes, ModelMetadata]]
# Called with the staging folder (model.onnx and checkpoint/ written, metadata.json not yet) and the metadata;
# returns the metadata to write (e.g. with the held-out figures of the staged model). Raising publishes nothing.
BeforePublish = Callable[[Path, ModelMetadata], ModelMetadata]
CHECKPOINT_DIR = "checkpoint"


class ExportError(RuntimeError):
    """The exported model failed a check; nothing was written."""


def to_onnx_bytes(model: UNet, height: int, width: int, *, mc_dropout: bool) -> bytes:
    """Serialise `model` (outputs probabilities) with a dynamic batch axis."""
    wrapper = ProbabilityHead(model)
    set_mc_dropout(wrapper, mc_dropout)
    dummy = torch.zeros(2, model.config.in_channels, height, width)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (dummy,),
            buf,  # type: ignore[arg-type]
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=OPSET,
            training=torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=False,
            dynamo=False,
        )
    set_mc_dropout(model, False)
    return buf.getvalue()


def check_parity(model: UNet, mc_bytes: bytes, height: int, width: int, seed: int = 0) -> dict[str, float]:
    """Deterministic parity (dropout off: onnxruntime vs torch) and stochasticity (dropout on: two runs differ)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, model.config.in_channels, height, width)).astype(np.float32)
    det = make_session(to_onnx_bytes(model, height, width, mc_dropout=False))
    set_mc_dropout(model, False)
    with torch.no_grad():
        want = model.probabilities(torch.from_numpy(x)).numpy()
    got = det.run(None, {"image": x})[0]
    max_abs = float(np.abs(got - want).max())
    if max_abs > PARITY_TOLERANCE:
        raise ExportError(f"onnxruntime and torch disagree by {max_abs:.2e} (> {PARITY_TOLERANCE}) with dropout off")
    mc = make_session(mc_bytes)
    a, b = (mc.run(None, {"image": x})[0] for _ in range(2))
    sample_diff = float(np.abs(a - b).max())
    if sample_diff == 0.0:
        raise ExportError("two Monte-Carlo runs of the exported model are identical: dropout is not live")
    return {"parity_max_abs_diff": max_abs, "mc_max_abs_diff": sample_diff}


def next_version(model_dir: Path) -> int:
    versions = (
        [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] if model_dir.is_dir() else []
    )
    return max(versions, default=0) + 1


def export_model(
    model: UNet,
    training: dict[str, object],
    models_dir: Path,
    name: str,
    *,
    class_names: tuple[str, ...] | None = None,
    convert: Converter | None = None,
    checkpoint: Path | None = None,
    lineage: dict[str, object] | None = None,
    before_publish: BeforePublish | None = None,
) -> Path:
    """Export `model` as `models_dir/name/<next version>/` (model.onnx + metadata.json), atomically.

    The version folder appears by one rename, so a watching server never sees half a model. `convert`
    (e.g. int8 quantisation) rewrites the checked model and its metadata before anything is written.
    `checkpoint` (a `save_checkpoint` folder) is copied in as `checkpoint/`, so the version can be fine-tuned
    later; `lineage` goes into the metadata; `before_publish` sees the staged folder before the rename.
    """
    cfg = training.get("train_config", {})
    assert isinstance(cfg, dict)
    height, width = int(cfg.get("height", 96)), int(cfg.get("width", 128))
    mc_bytes = to_onnx_bytes(model, height, width, mc_dropout=True)
    checks = check_parity(model, mc_bytes, height, width)
    model_dir = models_dir / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir)
    classes = class_names or (
        ("background", "lesion")
        if model.config.num_classes == 1
        else tuple(f"class_{i}" for i in range(model.config.num_classes))
    )
    meta = ModelMetadata.with_contract(
        name=name,
        version=version,
        input_channels=model.config.in_channels,
        input_height=height,
        input_width=width,
        num_classes=model.config.num_classes,
        mean=float(cfg.get("mean", 0.5)),
        std=float(cfg.get("std", 0.25)),
        dropout_rate=model.config.dropout,
        validation_dice=float(training.get("validation_dice", float("nan"))),  # type: ignore[arg-type]
        training_data_hash=str(training.get("training_data_hash", "")),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        class_names=classes,
        extra={
            "unet": model.config.to_json(),
            "checks": checks,
            "opset": OPSET,
            "validation_per_class": training.get("validation_per_class", {}),
        },
        resize=str(cfg.get("resize", "stretch")),  # checkpoints from before the field were stretched
        preprocessing=cfg.get("preprocessing") or {},
        lineage=dict(lineage or {}),
    )
    if convert is not None:
        mc_bytes, meta = convert(mc_bytes, meta)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    try:
        (staging / MODEL_FILE).write_bytes(mc_bytes)
        if checkpoint is not None:
            shutil.copytree(checkpoint, staging / CHECKPOINT_DIR)
        if before_publish is not None:
            meta = before_publish(staging, meta)
        (staging / METADATA_FILE).write_text(meta.to_json())
        for f in [*staging.iterdir(), *(staging / CHECKPOINT_DIR).glob("*")]:
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        target = model_dir / str(version)
        staging.rename(target)
        _fsync_dir(model_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("exported %s version %d to %s (parity %.1e)", name, version, target, checks["parity_max_abs_diff"])
    return target


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a crash right after it must not bring the staging name back)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
