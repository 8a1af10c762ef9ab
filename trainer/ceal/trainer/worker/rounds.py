"""One turn of `ceal trainer`: check → train → export (candidate) → evaluate → gate → record.

Crash safety: the trainer fine-tunes into its own scratch folder, the candidate is staged in a dot-folder the
registry ignores and appears by one rename with its figures already in metadata.json, and the verdict lands
in the promotion record by one atomic write. Killed anywhere, what a restart finds is either nothing new
(scratch and staging folders, removed by `recover`) or a complete version with its gate figures; a complete
version whose verdict was never recorded is judged from its own figures by `recover`. A version the record
does not name is a candidate and is never served.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ceal.client import Client
from ceal.service.engine.loaded import LoadedModel, load_model
from ceal.service.metadata import MODEL_FILE, MetadataError, ModelMetadata
from ceal.service.promotion import ModelStatus, disk_versions, read_record, update_record
from ceal.trainer.export import CHECKPOINT_DIR, export_model
from ceal.trainer.loop import FetchedLabel, as_dataset, fetch_labels, unlabelled_pool
from ceal.trainer.simulate.scoring import served_masks
from ceal.trainer.train import TrainConfig, train_and_save
from ceal.trainer.unet import load_checkpoint
from ceal.trainer.worker.curve import stop_signal
from ceal.trainer.worker.gate import GateResult, GateSettings, judge, per_image_dice
from ceal.trainer.worker.heldout import DEFAULT_SHARE, is_heldout

log = logging.getLogger("ceal.trainer")
SCRATCH = "train-in-progress"


class Stopped(Exception):
    """SIGTERM arrived; the worker stopped between two stages."""


@dataclass(frozen=True)
class TrainerSettings:
    models: Path  # the folder the servers watch
    work: Path  # the trainer's scratch folder
    promotions: Path | None = None  # <name>/promotion.json's folder, as `ceal serve --promotions` (default: models)
    name: str = "lesion"
    pool: str = ""
    init: Path | None = None  # checkpoint of the served version, if its folder has no checkpoint/
    heldout_share: float = DEFAULT_SHARE
    min_new_labels: int = 20  # a round starts at this many new human labels ...
    min_new_share: float = 0.10  # ... or at this share more than the newest version was trained with
    epochs: int = 10
    learning_rate: float = 5e-4
    pseudo: bool = True
    eval_samples: int = 10  # Monte-Carlo samples T per held-out image (as served: mean > 0.5)
    gate: GateSettings = field(default_factory=GateSettings)
    plateau_threshold: float = 0.005  # Dice points per 20 labels under which the pool stats say plateau
    seed: int = 0
    # TrainConfig fields replacing the served checkpoint's (augmentation, semi-supervised settings), and the
    # folder of the pool's images that semi-supervised training reads (`ceal.trainer.loop.unlabelled_pool`).
    overrides: dict[str, Any] = field(default_factory=dict)
    unlabelled: Path | None = None


@dataclass(frozen=True)
class RoundResult:
    decision: str  # "waiting" | "promoted" | "rejected"
    served_before: int
    served_after: int
    version: int = 0  # the candidate's version (0 when waiting)
    gate: GateResult | None = None
    message: str = ""


def _model_dir(s: TrainerSettings) -> Path:
    return s.models / s.name


def _record_dir(s: TrainerSettings) -> Path:
    return (s.promotions or s.models) / s.name


def _versions_meta(s: TrainerSettings) -> dict[int, ModelMetadata]:
    out = {}
    for v in disk_versions(_model_dir(s)):
        try:
            out[v] = ModelMetadata.read(_model_dir(s) / str(v))
        except MetadataError:
            continue
    return out


def served_version(s: TrainerSettings) -> int:
    record = read_record(_record_dir(s))
    if record is not None:
        return record.served
    return max(disk_versions(_model_dir(s)), default=0)


def recover(s: TrainerSettings) -> list[str]:
    """After a crash: drop scratch and staging folders; record the verdict of a version that carries one."""
    notes = []
    scratch = s.work / SCRATCH
    if scratch.exists():
        shutil.rmtree(scratch)
        notes.append(f"removed the unfinished training folder {scratch}")
    model_dir = _model_dir(s)
    for staging in model_dir.glob(".staging-*") if model_dir.is_dir() else []:
        shutil.rmtree(staging, ignore_errors=True)
        notes.append(f"removed the unfinished export {staging.name}")
    record = read_record(_record_dir(s))
    if record is not None:
        for version, meta in _versions_meta(s).items():
            gate = meta.lineage.get("gate")
            if version in record.versions or not isinstance(gate, dict):
                continue
            _record_verdict(s, version, bool(gate.get("promote")), str(gate.get("reason", "")))
            notes.append(f"recorded the verdict of version {version}, exported before a crash")
    for note in notes:
        log.info("recover: %s", note)
    return notes


def _record_verdict(s: TrainerSettings, version: int, promote: bool, reason: str) -> None:
    def change(record: Any) -> None:
        if promote:
            record.promote(version, reason, "trainer")
        else:
            record.set(version, ModelStatus.REJECTED, reason, "trainer")

    update_record(_record_dir(s), change, _model_dir(s))


def label_digest(labels: list[FetchedLabel]) -> str:
    """sha256 of the sorted "image id:label version:source" lines: which labels, at which version."""
    lines = sorted(f"{r.image_id}:{r.version}:{r.source}" for r in labels)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _baseline(metas: dict[int, ModelMetadata]) -> int:
    """Human labels the newest trainer version saw (rejected ones count: their labels were already tried)."""
    counts = [int(m.lineage.get("labels", {}).get("human", 0)) for m in metas.values()]
    return max(counts, default=0)


def due(s: TrainerSettings, human: int, baseline: int) -> tuple[bool, str]:
    new = human - baseline
    need = min(s.min_new_labels, max(1, int(np.ceil(s.min_new_share * baseline)))) if baseline else s.min_new_labels
    return new >= need, f"{new} new human labels since the newest version ({baseline} then, {human} now; need {need})"


def _checkpoint_of(s: TrainerSettings, version: int) -> Path:
    path = _model_dir(s) / str(version) / CHECKPOINT_DIR
    if path.is_dir():
        return path
    if s.init is not None:
        return s.init
    raise SystemExit(
        f"version {version} has no {CHECKPOINT_DIR}/ to fine-tune from; pass --init with its training checkpoint"
    )


def evaluate(model: LoadedModel, labels: list[FetchedLabel], samples: int, seed: int) -> np.ndarray:
    """Per-image Dice (N,) of the served label map (T-sample mean > 0.5) against the held-out human masks."""
    images = np.stack([r.image for r in labels])
    masks = np.stack([r.mask for r in labels])
    predicted = served_masks(model, images, samples, np.random.default_rng(seed))
    return per_image_dice(predicted != 0, masks != 0)


def _curve_points(metas: dict[int, ModelMetadata]) -> tuple[list[int], list[float], list[float]]:
    """(train human labels, held-out Dice, its standard error) of every promoted trainer version."""
    points = []
    for m in metas.values():
        heldout, labels, gate = (m.lineage.get(k, {}) for k in ("heldout", "labels", "gate"))
        if gate.get("promote") and "dice" in heldout:
            se = (float(heldout["dice_high"]) - float(heldout["dice_low"])) / (2 * 1.96)
            points.append((int(labels["train_human"]), float(heldout["dice"]), se))
            parent = metas.get(int(m.lineage.get("parent", 0)))
            if parent is not None and not parent.lineage and gate.get("served_train_human"):
                # a plain export's version: its training count, its Dice on that round's held-out set
                points.append((int(gate["served_train_human"]), float(heldout["served_dice"]), se))
    points.sort()
    return [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]


def run_round(client: Client, s: TrainerSettings, stop: Callable[[], bool] = lambda: False) -> RoundResult:
    """One turn; raises Stopped when `stop()` turns true between stages."""

    def stage(name: str, message: str, *args: object) -> None:
        if stop():
            raise Stopped(f"stopped before stage {name}")
        log.info("stage %s: " + message, name, *args)

    recover(s)
    update_record(
        _record_dir(s), lambda record: None, _model_dir(s)
    )  # from here on a new version is a candidate until judged
    served = served_version(s)
    if not served:
        raise SystemExit(f"no version of {s.name!r} in {s.models}: export a first one with `ceal export`")
    served_dir = _model_dir(s) / str(served)
    served_meta = ModelMetadata.read(served_dir)
    stage("check", "reading labels of pool %r (served version %d)", s.pool or "default", served)
    labels = fetch_labels(
        client,
        served_meta.input_height,
        served_meta.input_width,
        pool=s.pool,
        pseudo=s.pseudo,
        resize=served_meta.resize,
    )
    heldout = [r for r in labels if r.source == "human" and is_heldout(r.image_id, s.heldout_share)]
    train = [r for r in labels if not is_heldout(r.image_id, s.heldout_share)]
    human = sum(r.source == "human" for r in labels)
    metas = _versions_meta(s)
    ready, why = due(s, human, _baseline(metas))
    if not ready or not train:
        log.info("stage check: waiting: %s", why)
        return RoundResult("waiting", served, served, message=why)
    train_human = sum(r.source == "human" for r in train)
    stage(
        "train",
        "fine-tuning version %d on %d human + %d pseudo labels (%d human held out, %.0f %% by image-id hash); %s",
        served,
        train_human,
        len(train) - train_human,
        len(heldout),
        100 * s.heldout_share,
        why,
    )
    model, training = load_checkpoint(_checkpoint_of(s, served))
    cfg_raw = training.get("train_config", {})
    assert isinstance(cfg_raw, dict)
    cfg = TrainConfig(
        **{**cfg_raw, **s.overrides, "epochs": s.epochs, "learning_rate": s.learning_rate, "seed": s.seed}
    )
    scratch = s.work / SCRATCH
    s.work.mkdir(parents=True, exist_ok=True)
    labelled = {label.image_id for label in [*train, *heldout]}  # held-out images never train, not even unlabelled
    pool_images = unlabelled_pool(cfg, s.unlabelled, labelled, model.config.in_channels)
    record = train_and_save(as_dataset(train), None, scratch, cfg, init=model, unlabelled=pool_images)
    stage("export", "exporting the candidate (ONNX, dropout live, parity-checked)")
    served_model = load_model(served_dir, intra_op_threads=1)
    lineage = {
        "parent": served,
        "labels": {
            "human": human,
            "train_human": train_human,
            "train_pseudo": len(train) - train_human,
            "heldout_human": len(heldout),
            "digest": label_digest(train),
            "heldout_digest": label_digest(heldout),
        },
        "train_config": {**asdict(cfg), "fine_tuned_from": served, "pseudo": s.pseudo},
        "ceal_version": importlib.metadata.version("ceal"),
    }
    verdict: dict[str, GateResult] = {}

    def judge_staged(staging: Path, meta: ModelMetadata) -> ModelMetadata:
        log.info("stage export: candidate staged as %s", staging.name)
        stage("evaluate", "candidate and served version %d on the same %d held-out labels", served, len(heldout))
        candidate = LoadedModel(meta, (staging / MODEL_FILE).read_bytes(), intra_op_threads=1)
        if heldout:
            c_dice = evaluate(candidate, heldout, s.eval_samples, s.seed)
            s_dice = evaluate(served_model, heldout, s.eval_samples, s.seed)
        else:
            c_dice = s_dice = np.zeros(0)
        result = judge(c_dice, s_dice, s.gate)
        verdict["gate"] = result
        figures = {
            "share": s.heldout_share,
            "images": result.images,
            "dice": result.candidate_dice,
            "dice_low": result.candidate_low,
            "dice_high": result.candidate_high,
            "served_dice": result.served_dice,
        }
        served_train = served_meta.lineage.get("labels", {}).get("train_human", training.get("train_images", 0))
        gate = {**result.figures(), "served_version": served, "served_train_human": served_train}
        lin = {**meta.lineage, "heldout": figures, "gate": gate}
        n, y, se = _curve_points(metas)
        if not served_meta.lineage and isinstance(training.get("train_images"), int) and heldout:
            # the first version (a plain export): its own training count, its Dice on today's held-out set
            n, y, se = [int(training["train_images"]), *n], [result.served_dice, *y], [_se(result), *se]  # type: ignore[call-overload]
        if result.promote:
            n, y, se = [*n, train_human], [*y, result.candidate_dice], [*se, _se(result)]
        seconds = [r.seconds_spent for r in labels if r.source == "human" and r.seconds_spent > 0]
        signal = stop_signal(
            n, y, se, seconds_per_label=float(np.mean(seconds)) if seconds else 0.0, threshold=s.plateau_threshold
        )
        if signal is not None:
            lin["stop"] = signal.to_dict()
        return replace(meta, validation_dice=result.candidate_dice, lineage=lin)

    target = export_model(
        model, record, s.models, s.name, checkpoint=scratch, lineage=lineage, before_publish=judge_staged
    )
    shutil.rmtree(scratch, ignore_errors=True)
    version = int(target.name)
    result = verdict["gate"]
    _record_verdict(s, version, result.promote, result.reason)
    log.info("stage gate: version %d %s", version, result.reason)
    return RoundResult(
        "promoted" if result.promote else "rejected",
        served,
        version if result.promote else served,
        version,
        result,
        result.reason,
    )


def _se(result: GateResult) -> float:
    return (result.candidate_high - result.candidate_low) / (2 * 1.96)


def watch(client: Client, s: TrainerSettings, *, interval: float, stop: Callable[[], bool]) -> None:
    """Turn rounds until `stop()`: check every `interval` seconds while waiting."""
    while not stop():
        result = run_round(client, s, stop)
        if result.decision != "waiting":
            continue
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not stop():
            time.sleep(min(1.0, interval))
