"""Segmentation metrics clinicians read: per-class Dice and the 95th-percentile Hausdorff distance (HD95).

Pure numpy + scipy, with MONAI's definitions: HD95 of one image and class is the larger of the two directed
95th-percentile distances between the prediction's and the reference's boundary pixels (8-connected
boundaries, Euclidean distance in pixels times `spacing`). An image where the class is absent from both masks
is left out of that class's mean; where it is absent from only one, Dice is 0 and HD95 is undefined (left out,
and counted in `hd95_missing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["ClassScores", "hd95", "per_class_scores"]


@dataclass(frozen=True)
class ClassScores:
    """Mean Dice and HD95 of one class over the images where it occurs (NaN when it occurs nowhere)."""

    name: str
    dice: float
    hd95: float
    images: int  # images where the class is in the prediction or the reference
    hd95_missing: int  # of those, images where only one of the two holds it (no HD95)

    def as_dict(self) -> dict[str, float | int]:
        return {"dice": self.dice, "hd95": self.hd95, "images": self.images, "hd95_missing": self.hd95_missing}


def _boundary(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)
    out: npt.NDArray[np.bool_] = mask & ~eroded
    return out


def hd95(pred: npt.NDArray[np.bool_], target: npt.NDArray[np.bool_], spacing: Sequence[float] = (1.0, 1.0)) -> float:
    """HD95 between two non-empty binary (H, W) masks, in the units of `spacing` (row, column); NaN if either
    is empty."""
    if not pred.any() or not target.any():
        return float("nan")
    edge_p, edge_t = _boundary(pred), _boundary(target)
    to_t = ndimage.distance_transform_edt(~edge_t, sampling=spacing)  # (H, W) distance to the target's edge
    to_p = ndimage.distance_transform_edt(~edge_p, sampling=spacing)
    return float(max(np.percentile(to_t[edge_p], 95), np.percentile(to_p[edge_t], 95)))


def per_class_scores(
    pred: npt.NDArray[np.integer],
    target: npt.NDArray[np.integer],
    class_names: Sequence[str],
    spacing: Sequence[float] = (1.0, 1.0),
) -> list[ClassScores]:
    """Per foreground class (index 1.. of `class_names`): Dice and HD95 over (N, H, W) label maps."""
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must be the same (N, H, W)")
    out = []
    for index, name in enumerate(class_names[1:], start=1):
        dices, distances, missing = [], [], 0
        for p_img, t_img in zip(pred == index, target == index, strict=True):
            if not p_img.any() and not t_img.any():
                continue
            dices.append(2.0 * float((p_img & t_img).sum()) / float(p_img.sum() + t_img.sum()))
            if p_img.any() and t_img.any():
                distances.append(hd95(p_img, t_img, spacing))
            else:
                missing += 1
        out.append(
            ClassScores(
                name,
                float(np.mean(dices)) if dices else float("nan"),
                float(np.mean(distances)) if distances else float("nan"),
                len(dices),
                missing,
            )
        )
    return out
