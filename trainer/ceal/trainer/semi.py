"""Semi-supervised training on the unlabelled pool: confidence-masked pseudo-labels (FixMatch, Sohn et al.
2020, for segmentation), with CEAL's confident whole-image pseudo-labels as a special case.

Every training step that has an unlabelled pool also draws a batch from it: a weak view (random flips) is
segmented without gradient; where the model is confident (FixMatch: per pixel, max(p, 1 − p) ≥ threshold;
CEAL: per image, a non-empty mask whose mean pixel confidence ≥ threshold, then every pixel of it) its own
mask becomes the target for a strong view (intensity changes only, so the target still lines up: `augment.
photometric`; CEAL: the weak view itself). The loss is the per-pixel BCE / cross-entropy over the confident
pixels, divided by all pixels of the batch and multiplied by `weight`, added to the labelled loss. An image's
weight in a draw is its confident share of pixels; `Unlabelled.record()` lists the images that contributed
with their mean weight over their draws (the training record keeps it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ceal.trainer.augment import albumentations, photometric

if TYPE_CHECKING:  # torch is imported where it is used, so a config (and `ceal --help`) does not load it
    import torch

    from ceal.trainer.unet import UNet

__all__ = ["SEMI_MODES", "SemiConfig", "Unlabelled"]

SEMI_MODES: Final = ("fixmatch", "ceal")


@dataclass(frozen=True)
class SemiConfig:
    """mode: "fixmatch" (pixel-wise confidence mask, strong view) or "ceal" (whole confident images, weak
    view); threshold: the confidence a pixel (or an image's mean) needs; weight: the unlabelled loss's factor."""

    mode: str = "fixmatch"
    threshold: float = 0.95
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in SEMI_MODES:
            raise ValueError(f"semi-supervised mode must be one of {', '.join(SEMI_MODES)}; got {self.mode!r}")
        if not 0.5 <= self.threshold < 1.0 or not self.weight > 0:
            raise ValueError(f"need 0.5 <= threshold < 1 and weight > 0; got {self.threshold}, {self.weight}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _targets(logits: torch.Tensor, cfg: SemiConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(target (B, H, W) long, mask (B, H, W) float) of a weak view's logits (B, C, H, W)."""
    import torch

    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        target = (p > 0.5).long()
        confidence = torch.maximum(p, 1 - p)
    else:
        probs = torch.softmax(logits, 1)
        confidence, target = probs.max(1)
    if cfg.mode == "fixmatch":
        return target, (confidence >= cfg.threshold).float()
    keep = (confidence.mean((1, 2)) >= cfg.threshold) & (target != 0).any(2).any(1)
    return target, keep.float()[:, None, None].expand_as(confidence).contiguous()


class Unlabelled:
    """The unlabelled images of one training call (uint8 (N, H, W, C) with their ids) and its draws."""

    def __init__(self, ids: list[str], images: npt.NDArray[np.uint8], cfg: SemiConfig, seed: int) -> None:
        if len(ids) != len(images) or not len(ids):
            raise ValueError(f"need one id per unlabelled image and at least one; got {len(ids)}, {len(images)}")
        self.ids, self.images, self.cfg = list(ids), images, cfg
        self._rng = np.random.default_rng(seed)
        alb = albumentations()
        self._weak = alb.Compose([alb.HorizontalFlip(p=0.5), alb.VerticalFlip(p=0.5)], seed=seed)
        self._strong = photometric(seed + 1) if cfg.mode == "fixmatch" else None
        self.draws = np.zeros(len(ids), np.int64)
        self.weight_sum = np.zeros(len(ids), np.float64)

    def _views(self, idx: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        weak = np.stack([self._weak(image=np.ascontiguousarray(self.images[i]))["image"] for i in idx])
        if self._strong is None:
            return weak, weak
        return weak, np.stack([self._strong(image=image)["image"] for image in weak])

    def loss(self, model: UNet, batch_size: int, mean: float, std: float) -> torch.Tensor:
        """The unlabelled loss of one drawn batch (tallying each image's weight)."""
        import torch
        import torch.nn.functional as F

        from ceal.trainer.train import to_tensor

        idx = self._rng.integers(0, len(self.ids), batch_size)
        weak, strong = self._views(idx)
        with torch.no_grad():
            target, mask = _targets(model(to_tensor(weak, mean, std)), self.cfg)
        logits = model(to_tensor(strong, mean, std))
        if logits.shape[1] == 1:
            per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], target.float(), reduction="none")
        else:
            per_pixel = F.cross_entropy(logits, target, reduction="none")
        np.add.at(self.draws, idx, 1)
        np.add.at(self.weight_sum, idx, mask.mean((1, 2)).numpy().astype(np.float64))
        return self.cfg.weight * (per_pixel * mask).mean()

    def record(self) -> dict[str, Any]:
        """{mode, threshold, weight, images, drawn, contributed: {image id: mean weight over its draws}}."""
        mean = np.divide(self.weight_sum, self.draws, out=np.zeros_like(self.weight_sum), where=self.draws > 0)
        return {
            **self.cfg.as_dict(),
            "images": len(self.ids),
            "drawn": int((self.draws > 0).sum()),
            "contributed": {self.ids[i]: round(float(mean[i]), 4) for i in np.flatnonzero(mean > 0)},
        }
