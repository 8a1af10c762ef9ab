"""Training: Dice + BCE (or cross-entropy), Adam, per-sample augmentation (`augment`), optionally the
unlabelled pool's confident pseudo-labels (`semi`), validation Dice, seeded."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ceal.imaging import PreprocessParams
from ceal.trainer.augment import Augmenter, augment_params, augmentation_record
from ceal.trainer.metrics import per_class_scores
from ceal.trainer.semi import SemiConfig, Unlabelled
from ceal.trainer.unet import UNet, UNetConfig, save_checkpoint

log = logging.getLogger(__name__)

# Input normalisation recorded in the exported metadata: x = (unit pixel - mean) / std.
DEFAULT_MEAN = 0.5
DEFAULT_STD = 0.25


@dataclass
class TrainConfig:
    height: int = 96
    width: int = 128
    epochs: int = 20
    batch_size: int = 8
    learning_rate: float = 1e-3
    seed: int = 0
    augment: bool = True
    mean: float = DEFAULT_MEAN
    std: float = DEFAULT_STD
    # How images were brought to height x width: "pad" keeps their aspect (fit, centre, pad black; masks pad
    # with background; `ceal train`'s default), "stretch" resizes. Recorded in the checkpoint and the exported
    # model's metadata, so the server feeds the model as it was trained.
    resize: str = "stretch"
    # The contract's intensity settings the images were loaded with (`ceal.imaging.PreprocessParams` fields
    # other than the shape, mean/std and resize, e.g. {"uint16_max": 4095}); exported into the model's metadata.
    preprocessing: dict[str, Any] = field(default_factory=dict)
    # Augmentation preset (`ceal.trainer.augment.AUGMENT_PRESETS`; "flips" is the historical one); the record
    # also keeps its resolved parameters. Applies when `augment` is on.
    augmentation: str = "flips"
    # Semi-supervised training on unlabelled images ("" = off, "fixmatch" or "ceal"; `ceal.trainer.semi`).
    semi: str = ""
    semi_threshold: float = 0.95
    semi_weight: float = 1.0

    def __post_init__(self) -> None:
        augment_params(self.augmentation)  # ValueError naming the presets
        self.semi_config()

    def semi_config(self) -> SemiConfig | None:
        """The semi-supervised settings, or None when off."""
        return SemiConfig(self.semi, self.semi_threshold, self.semi_weight) if self.semi else None

    def params(self, channels: int = 3) -> PreprocessParams:
        """The full preprocessing contract of this training: shape, normalisation and intensity settings."""
        shape = {"channels": channels, "height": self.height, "width": self.width, "mean": self.mean, "std": self.std}
        return PreprocessParams.from_dict({**self.preprocessing, **shape, "resize": self.resize})


@dataclass
class Dataset:
    """Images uint8 (N, H, W, C) and masks uint8 (N, H, W) at the training size, with their ids."""

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.images) or len(self.images) != len(self.masks):
            raise ValueError("ids, images and masks must have the same length")

    def subset(self, idx: list[int] | np.ndarray) -> Dataset:
        idx = list(map(int, idx))
        return Dataset([self.ids[i] for i in idx], self.images[idx], self.masks[idx])

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for i, image_id in enumerate(self.ids):
            h.update(image_id.encode())
            h.update(self.images[i].tobytes())
            h.update(self.masks[i].tobytes())
        return h.hexdigest()[:16]


def to_tensor(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (N, H, W, C) → normalised float32 (N, C, H, W)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - mean) / std


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """Class names when none are given: background + lesion for a sigmoid model, class_i otherwise."""
    return ("background", "lesion") if num_classes == 1 else tuple(f"class_{i}" for i in range(num_classes))


def dice_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean per-image Dice of binary masks (N, H, W); an image where both are empty counts as 1."""
    pred, target = pred.astype(bool), target.astype(bool)
    inter = (pred & target).sum(axis=(1, 2))
    total = pred.sum(axis=(1, 2)) + target.sum(axis=(1, 2))
    per_image = np.where(total == 0, 1.0, 2.0 * inter / np.maximum(total, 1))
    return float(per_image.mean()) if len(per_image) else float("nan")


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    if num_classes == 1:
        t = target.unsqueeze(1).float()
        bce = F.binary_cross_entropy_with_logits(logits, t)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * t).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + t.sum((1, 2, 3)) + 1)
        return bce + dice.mean()
    ce = F.cross_entropy(logits, target.long())
    p = torch.softmax(logits, 1)[:, 1:]
    onehot = F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2)[:, 1:].float()
    dice = 1 - (2 * (p * onehot).sum((2, 3)) + 1) / (p.sum((2, 3)) + onehot.sum((2, 3)) + 1)
    return ce + dice.mean()


def augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips and 90° rotations (square inputs only rotate by 180°), same for image and mask."""
    if torch.rand(1, generator=gen).item() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if torch.rand(1, generator=gen).item() < 0.5:
        x, y = x.flip(-2), y.flip(-2)
    if x.shape[-1] == x.shape[-2] and torch.rand(1, generator=gen).item() < 0.5:
        x, y = x.rot90(1, (-2, -1)), y.rot90(1, (-2, -1))
    return x, y


def make_augmenter(preset: str, seed: int) -> Augmenter | None:
    """The per-sample augmenter of a preset, or None for "flips" (the torch path, `augment`)."""
    params = augment_params(preset)
    return None if params is None else Augmenter(params, seed)


def labelled_batch(
    train: Dataset,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    idx: torch.Tensor,
    augmenter: Augmenter | None,
    gen: torch.Generator,
    norm: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented training batch of rows `idx`: the torch flips without an augmenter, else per sample
    from the uint8 images (normalised with norm = (mean, std))."""
    if augmenter is None:
        return augment(x_all[idx], y_all[idx], gen)
    rows = idx.numpy()
    x, y = augmenter.batch(train.images[rows], train.masks[rows])
    return to_tensor(x, *norm), torch.from_numpy(y.astype(np.int64))


@torch.no_grad()
def predict_masks(model: UNet, images: np.ndarray, cfg: TrainConfig, batch_size: int = 16) -> np.ndarray:
    """Deterministic (dropout off) label maps uint8 (N, H, W)."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        p = model.probabilities(to_tensor(images[start : start + batch_size], cfg.mean, cfg.std))
        out.append((p[:, 0] > 0.5 if p.shape[1] == 1 else p.argmax(1)).to(torch.uint8).numpy())
    return np.concatenate(out) if out else np.zeros((0, cfg.height, cfg.width), np.uint8)


def fit(
    model: UNet,
    train: Dataset,
    val: Dataset | None,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    unlabelled: Unlabelled | None = None,
) -> list[dict[str, float]]:
    """Train in place; returns per-epoch history (loss, validation Dice). With `unlabelled`, every step adds
    the unlabelled loss of a batch drawn from it (`ceal.trainer.semi`)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    x_all = to_tensor(train.images, cfg.mean, cfg.std)
    y_all = torch.from_numpy(train.masks.astype(np.int64))
    augmenter = make_augmenter(cfg.augmentation, cfg.seed) if cfg.augment else None
    history: list[dict[str, float]] = []
    bar = tqdm(range(cfg.epochs), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            if cfg.augment:
                x, y = labelled_batch(train, x_all, y_all, idx, augmenter, gen, (cfg.mean, cfg.std))
            else:
                x, y = x_all[idx], y_all[idx]
            loss = segmentation_loss(model(x), y, model.config.num_classes)
            if unlabelled is not None:
                loss = loss + unlabelled.loss(model, len(idx), cfg.mean, cfg.std)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            losses.append(loss.item())
        row = {"epoch": float(epoch + 1), "loss": float(np.mean(losses)) if losses else float("nan")}
        if val is not None and len(val.ids):
            row["val_dice"] = dice_score(predict_masks(model, val.images, cfg) > 0, val.masks > 0)
        history.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
    model.eval()
    return history


def train_and_save(
    train: Dataset,
    val: Dataset | None,
    out: Path,
    cfg: TrainConfig,
    unet_config: UNetConfig | None = None,
    init: UNet | None = None,
    progress: bool = True,
    unlabelled: tuple[list[str], np.ndarray] | None = None,
) -> dict[str, object]:
    """Train a new U-Net (or fine-tune `init`) and write a checkpoint to `out`; returns the training record.

    unlabelled: (ids, uint8 (N, H, W, C) images) without masks, trained on when cfg.semi is set; the record's
    "semi" lists which of them contributed and with what mean weight."""
    torch.manual_seed(cfg.seed)
    model = init if init is not None else UNet(unet_config or UNetConfig())
    model.check_input(torch.zeros(1, model.config.in_channels, cfg.height, cfg.width))
    semi = cfg.semi_config()
    pool = None
    if semi is not None and unlabelled is not None and len(unlabelled[0]):
        pool = Unlabelled(unlabelled[0], unlabelled[1], semi, cfg.seed)
    elif semi is not None:
        log.warning("semi-supervised training asked for, but no unlabelled images were given: labelled only")
    started = time.time()
    history = fit(model, train, val, cfg, progress=progress, unlabelled=pool)
    per_class: dict[str, dict[str, float | int]] = {}
    if val is not None and len(val.ids):
        names = default_class_names(model.config.num_classes)
        scores = per_class_scores(predict_masks(model, val.images, cfg), val.masks.astype(np.uint8), names)
        per_class = {s.name: s.as_dict() for s in scores}
    record: dict[str, object] = {
        "train_config": asdict(cfg),
        "augmentation_params": augmentation_record(cfg.augmentation if cfg.augment else "none"),
        "semi": pool.record() if pool is not None else None,
        "history": history,
        "validation_dice": history[-1].get("val_dice", float("nan")) if history else float("nan"),
        "validation_per_class": per_class,  # Dice and HD95 (pixels) per class, `ceal.trainer.metrics`
        "training_data_hash": train.content_hash(),
        "train_images": len(train.ids),
        "val_images": len(val.ids) if val is not None else 0,
        "seconds": round(time.time() - started, 1),
    }
    save_checkpoint(model, out, record)
    log.info("checkpoint written to %s (validation Dice %.3f)", out, record["validation_dice"])
    return record
