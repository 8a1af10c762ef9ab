"""Training for a fixed number of optimizer steps with a one-cycle learning rate: the same compute whatever
the size of the labelled set.

Epoch-based training gives a 10-image set a tenth of the updates of a 100-image one; an active-learning
comparison then measures training time, not labels. Here every call takes `steps` Adam steps on batches drawn
with replacement from the labelled images, and the one-cycle schedule (warm-up to `max_lr` over the first
10 %, cosine decay to ~0) ends each call converged rather than mid-descent, from scratch or from warm weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ceal.trainer.augment import augment_params
from ceal.trainer.semi import Unlabelled
from ceal.trainer.train import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    Dataset,
    labelled_batch,
    make_augmenter,
    segmentation_loss,
    to_tensor,
)
from ceal.trainer.unet import UNet

__all__ = ["StepSchedule", "batch_indices", "fit_steps"]


@dataclass(frozen=True)
class StepSchedule:
    """steps: Adam steps; max_lr: the one-cycle peak; warmup: share of the steps spent rising to it;
    augmentation: the preset (`ceal.trainer.augment`; "flips", the historical torch flips, by default)."""

    steps: int = 500
    max_lr: float = 3e-3
    batch_size: int = 8
    warmup: float = 0.1
    seed: int = 0
    mean: float = DEFAULT_MEAN
    std: float = DEFAULT_STD
    augmentation: str = "flips"

    def __post_init__(self) -> None:
        augment_params(self.augmentation)
        if self.steps < 1 or self.batch_size < 2 or not self.max_lr > 0 or not 0 < self.warmup < 1:
            raise ValueError(f"need steps >= 1, batch_size >= 2 (BatchNorm), max_lr > 0 and 0 < warmup < 1; got {self}")


def batch_indices(n: int, batch_size: int, gen: torch.Generator, weights: torch.Tensor | None = None) -> torch.Tensor:
    """One batch of row indices in [0, n), with replacement: uniform, or with probability ∝ `weights` (n,)."""
    if weights is None:
        return torch.randint(0, n, (batch_size,), generator=gen)
    return torch.multinomial(weights, batch_size, replacement=True, generator=gen)


def fit_steps(
    model: UNet,
    train: Dataset,
    schedule: StepSchedule,
    weights: np.ndarray | None = None,
    unlabelled: Unlabelled | None = None,
) -> list[float]:
    """Train `model` in place for schedule.steps steps (schedule.augmentation); returns the loss of each step.

    Batches are drawn with replacement, so a labelled set smaller than a batch still trains; `weights` (one
    per training pair, >= 0, not all 0) makes a pair's chance of each draw proportional to its weight. With
    `unlabelled`, each step adds the unlabelled loss of a batch drawn from it (`ceal.trainer.semi`). The
    model is left in eval mode.
    """
    if len(train.ids) == 0:
        raise ValueError("nothing to train on: the labelled set is empty")
    valid = weights is None or (
        weights.shape == (len(train.ids),) and np.isfinite(weights).all() and (weights >= 0).all() and weights.sum() > 0
    )
    if not valid:
        raise ValueError(f"weights must be {len(train.ids)} finite values >= 0, not all 0")
    draw_weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    torch.manual_seed(schedule.seed)
    gen = torch.Generator().manual_seed(schedule.seed)
    x_all = to_tensor(train.images, schedule.mean, schedule.std)
    y_all = torch.from_numpy(train.masks.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=schedule.max_lr)
    lr = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=schedule.max_lr, total_steps=schedule.steps, pct_start=schedule.warmup
    )
    augmenter = make_augmenter(schedule.augmentation, schedule.seed)
    losses = []
    model.train()
    for _ in range(schedule.steps):
        idx = batch_indices(len(x_all), schedule.batch_size, gen, draw_weights)
        x, y = labelled_batch(train, x_all, y_all, idx, augmenter, gen, (schedule.mean, schedule.std))
        loss = segmentation_loss(model(x), y, model.config.num_classes)
        if unlabelled is not None:
            loss = loss + unlabelled.loss(model, schedule.batch_size, schedule.mean, schedule.std)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        lr.step()
        losses.append(float(loss.item()))
    model.eval()
    return losses
