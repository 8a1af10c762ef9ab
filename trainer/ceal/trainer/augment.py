"""Per-sample training augmentation: geometry (flips, rotation, scale, shift, elastic) applied to image and
mask alike, intensity (brightness, contrast, gamma, blur, hue) to the image only. albumentations does the work.

A preset names a set of parameters (`AUGMENT_PRESETS`); the resolved parameters are what a model's training
record keeps (`TrainConfig.augmentation` holds the preset, `AugmentParams.as_dict` the numbers). "flips" is the
trainer's historical augmentation (random flips, 90° turns of square inputs) and stays on its own torch path, so
earlier runs and checkpoints reproduce; every other preset draws from one seeded albumentations pipeline per
training call, so the same seed gives the same batches.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import albumentations as A

__all__ = [
    "AUGMENT_PRESETS",
    "AugmentParams",
    "Augmenter",
    "albumentations",
    "augment_params",
    "augmentation_record",
    "photometric",
]


@dataclass(frozen=True)
class AugmentParams:
    """flip: chance of each of the horizontal and vertical flips; affine: chance of a rotation within ±rotate
    degrees, a scale within 1 ± scale and a shift within ± shift of the size; elastic: chance of an elastic
    warp; brightness, contrast: ± limits (chance ½ each); gamma: ± share around 1 (chance ½); blur: chance
    of a Gaussian blur; hue: ± degrees of hue shift (chance ½; no effect on gray images)."""

    flip: float = 0.0
    affine: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    shift: float = 0.0
    elastic: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    blur: float = 0.0
    hue: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


AUGMENT_PRESETS: Final[dict[str, AugmentParams | None]] = {
    "none": AugmentParams(),
    "flips": None,  # the historical torch flips (train.augment), kept bit for bit
    "standard": AugmentParams(
        flip=0.5,
        affine=0.7,
        rotate=20.0,
        scale=0.15,
        shift=0.08,
        elastic=0.2,
        brightness=0.2,
        contrast=0.2,
        gamma=0.2,
        blur=0.2,
        hue=10.0,
    ),
}


def augment_params(preset: str) -> AugmentParams | None:
    """The parameters of a preset (None for "flips", the torch path); ValueError naming the presets."""
    if preset not in AUGMENT_PRESETS:
        raise ValueError(f"unknown augmentation {preset!r}; choose one of {', '.join(AUGMENT_PRESETS)}")
    return AUGMENT_PRESETS[preset]


def augmentation_record(preset: str) -> dict[str, Any]:
    """What a training record keeps: the preset and its resolved parameters."""
    params = augment_params(preset)
    if params is None:
        return {"preset": preset, "flip": 0.5, "rotate90_if_square": 0.5}
    return {"preset": preset, **params.as_dict()}


def albumentations() -> Any:
    """The albumentations module, imported on first use (so configs and `ceal --help` do not load it)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
    import albumentations as alb

    return alb


def _pipeline(p: AugmentParams, seed: int) -> A.Compose:
    import cv2

    A = albumentations()  # noqa: N806
    steps: list[Any] = []
    if p.flip > 0:
        steps += [A.HorizontalFlip(p=p.flip), A.VerticalFlip(p=p.flip)]
    if p.affine > 0:
        steps.append(
            A.Affine(
                scale=(1 - p.scale, 1 + p.scale),
                translate_percent=(-p.shift, p.shift),
                rotate=(-p.rotate, p.rotate),
                border_mode=cv2.BORDER_REFLECT_101,
                p=p.affine,
            )
        )
    if p.elastic > 0:
        steps.append(A.ElasticTransform(alpha=10.0, sigma=4.0, border_mode=cv2.BORDER_REFLECT_101, p=p.elastic))
    if p.brightness > 0 or p.contrast > 0:
        steps.append(A.RandomBrightnessContrast(brightness_limit=p.brightness, contrast_limit=p.contrast, p=0.5))
    if p.gamma > 0:
        steps.append(A.RandomGamma(gamma_limit=(100 * (1 - p.gamma), 100 * (1 + p.gamma)), p=0.5))
    if p.blur > 0:
        steps.append(A.GaussianBlur(blur_limit=(3, 5), p=p.blur))
    if p.hue > 0:
        steps.append(A.HueSaturationValue(hue_shift_limit=p.hue, sat_shift_limit=10, val_shift_limit=0, p=0.5))
    return A.Compose(steps, seed=seed)


def photometric(seed: int) -> A.Compose:
    """FixMatch's strong view for segmentation: intensity only (brightness, contrast, gamma, blur, noise), so
    the pseudo-label drawn on the weak view still lines up pixel for pixel."""
    A = albumentations()  # noqa: N806
    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=0.4, contrast_limit=0.4, p=1.0),
            A.RandomGamma(gamma_limit=(60, 140), p=0.5),
            A.GaussianBlur(blur_limit=(3, 5), p=0.5),
            A.GaussNoise(std_range=(0.02, 0.08), p=0.5),
        ],
        seed=seed,
    )


class Augmenter:
    """One seeded pipeline for a training call: `batch(images, masks)` transforms each pair on its own."""

    def __init__(self, params: AugmentParams, seed: int) -> None:
        self.params = params
        self._compose = _pipeline(params, seed)

    def batch(
        self, images: npt.NDArray[np.uint8], masks: npt.NDArray[np.integer]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """uint8 (B, H, W, C) images and (B, H, W) masks → the same shapes, each pair transformed alike."""
        out_x = np.empty_like(images)
        out_y = np.empty(masks.shape, np.uint8)
        for i in range(len(images)):
            done = self._compose(image=np.ascontiguousarray(images[i]), mask=np.ascontiguousarray(masks[i], np.uint8))
            out_x[i], out_y[i] = done["image"], done["mask"]
        return out_x, out_y
