"""Plausible new lesion masks from existing ones: the conditions a synthetic image is generated from.

An edit is a random similarity transform about the lesion's centroid (rotation, scale 0.8–1.25), a smooth
random deformation of the outline, sometimes a one-pixel dilation or erosion, and a shift that keeps the
lesion inside the image. Pure numpy/scipy, so it is property-tested without a model.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["edit_mask"]

MaskArray = npt.NDArray[np.uint8]

SCALE = (0.8, 1.25)  # area changes by 0.64–1.56
MAX_SHIFT = 0.15  # of each side
WARP_SIGMA = 0.08  # smoothness of the deformation field, as a share of the shorter side
WARP_AMPLITUDE = 0.04  # peak displacement, as a share of the shorter side


def _similarity(mask: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """(h, w) foreground in [0, 1] rotated by any angle and scaled about its centroid (bilinear)."""
    centre = np.array(ndimage.center_of_mass(mask), dtype=np.float64)
    angle = rng.uniform(-math.pi, math.pi)
    scale = math.exp(rng.uniform(math.log(SCALE[0]), math.log(SCALE[1])))
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    inverse = np.array([[cos, -sin], [sin, cos]])  # output (row, col) → input, about the centroid
    offset = centre - inverse @ centre
    out: npt.NDArray[np.float64] = ndimage.affine_transform(mask, inverse, offset=offset, order=1, mode="constant")
    return out


def _warp(mask: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """(h, w) foreground pulled along a smooth random displacement field: a ragged, not a copied, outline."""
    h, w = mask.shape
    side = min(h, w)
    sigma = max(1.0, WARP_SIGMA * side)
    fields = []
    for _ in range(2):
        field = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma, mode="wrap")
        peak = float(np.abs(field).max()) or 1.0
        fields.append(field / peak * WARP_AMPLITUDE * side * rng.uniform(0.5, 1.0))
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    out: npt.NDArray[np.float64] = ndimage.map_coordinates(
        mask, [rows + fields[0], cols + fields[1]], order=1, mode="constant"
    )
    return out


def _morphology(mask: npt.NDArray[np.bool_], rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """One-pixel dilation (a third of the time), erosion (a third), or nothing."""
    choice = int(rng.integers(3))
    if choice == 1:
        return np.asarray(ndimage.binary_dilation(mask), dtype=bool)
    if choice == 2:
        return np.asarray(ndimage.binary_erosion(mask), dtype=bool)
    return mask


def _shift_inside(mask: npt.NDArray[np.bool_], rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Shift by whole pixels, at most MAX_SHIFT of each side, never pushing foreground out of the image."""
    out = np.zeros_like(mask)
    rows, cols = np.nonzero(mask)
    moves = []
    for coords, side in ((rows, mask.shape[0]), (cols, mask.shape[1])):
        limit = int(MAX_SHIFT * side)
        low, high = max(-limit, -int(coords.min())), min(limit, side - 1 - int(coords.max()))
        moves.append(int(rng.integers(low, high + 1)) if high >= low else 0)
    dr, dc = moves
    out[rows + dr, cols + dc] = True
    return out


def edit_mask(mask: MaskArray, rng: np.random.Generator) -> MaskArray:
    """A plausible new lesion mask from `mask`: (h, w) class indices (nonzero = lesion) → uint8 (h, w) in {0, 1}.

    Similarity transform about the centroid, smooth deformation, maybe a one-pixel dilation or erosion, then a
    shift that keeps the lesion inside the image. Where an edit would leave no lesion (a tiny one eroded, or
    moved out), the input's own foreground comes back instead, so the result is never empty unless the input is.
    Deterministic for the state of `rng`.
    """
    if mask.ndim != 2:
        raise ValueError(f"edit_mask takes one (h, w) mask; got shape {mask.shape}")
    original: MaskArray = (mask != 0).astype(np.uint8)
    if not original.any():
        return original
    soft = _warp(_similarity(original.astype(np.float64), rng), rng)
    edited = _morphology(soft > 0.5, rng)
    if not edited.any():
        return original
    out: MaskArray = _shift_inside(edited, rng).astype(np.uint8)
    return out
