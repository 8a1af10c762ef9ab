"""Image-level reductions of per-pixel uncertainty maps (pure numpy + scipy.ndimage).

A pixel map `values: (H, W)` becomes one float per image so that images can be ranked:

- ``"mean"``: the mean over all H·W pixels.
- ``"sum"``: the sum over all pixels (grows with the image size and with the extent of the uncertain region).
- ``"top_k_mean"``: the mean of the ``ceil(top_k_percent / 100 · H·W)`` largest values (at least one pixel),
  so that a small, very uncertain region is not diluted by a confident background.
- ``"boundary_weighted"``: the weighted mean ``Σ w·v / Σ w`` with weights from :func:`boundary_weights`
  (CEAL: uncertainty near the predicted lesion border matters most).

:func:`image_scores` applies every reduction to every map of an ``MCStatistics``; :func:`confidence` is
CEAL's whole-image certainty used to pick pseudo-labels. Errors are ``InvalidInput`` (a ValueError).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ceal.service.errors import InvalidInput

if TYPE_CHECKING:
    from ceal.service.uncertainty import MCStatistics

__all__ = [
    "MEASURES",
    "REDUCTIONS",
    "boundary_weights",
    "confidence",
    "image_score",
    "image_scores",
    "mean_label_map",
    "reduce_map",
    "top_k_count",
]

REDUCTIONS: Final[tuple[str, ...]] = ("mean", "sum", "top_k_mean", "boundary_weighted")
# The per-pixel maps of MCStatistics that are scored (see ceal.service.uncertainty).
MEASURES: Final[tuple[str, ...]] = ("entropy", "mutual_information", "variance")


def _check_map(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    array = np.asarray(values)
    if array.ndim != 2 or array.size == 0:
        raise InvalidInput(f"{name} must be a non-empty 2-D map of shape (H, W); got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidInput(f"{name} must hold real numbers; got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise InvalidInput(f"{name} holds {bad} non-finite values (NaN or inf); check the map that was passed in")
    return array


def top_k_count(pixels: int, top_k_percent: float) -> int:
    """The number of pixels averaged by ``"top_k_mean"``: ``ceil(top_k_percent/100 · pixels)``, at least 1."""
    if not (0.0 < top_k_percent <= 100.0):  # also rejects NaN
        raise InvalidInput(f"top_k_percent must lie in (0, 100]; got {top_k_percent}")
    # round() first so that e.g. 5% of 100 pixels is 5, not 6 through 5.000000000000001.
    return max(1, math.ceil(round(top_k_percent / 100.0 * pixels, 9)))


def reduce_map(
    values: npt.ArrayLike,
    reduction: str,
    *,
    top_k_percent: float = 5.0,
    weights: npt.ArrayLike | None = None,
) -> float:
    """Reduce a per-pixel map ``values: (H, W)`` to one image score.

    ``reduction`` is one of :data:`REDUCTIONS` (see the module docstring for each formula).
    ``top_k_percent`` is used by ``"top_k_mean"`` only; ``weights: (H, W)`` (non-negative, not all zero)
    is required by ``"boundary_weighted"`` and ignored by the others.
    Raises InvalidInput (a ValueError) for an unknown reduction, listing the valid ones, or a malformed map.
    """
    if reduction not in REDUCTIONS:
        raise InvalidInput(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    array = _check_map(values, "values")
    if reduction == "mean":
        return float(array.mean())
    if reduction == "sum":
        return float(array.sum())
    if reduction == "top_k_mean":
        flat = array.ravel()
        k = top_k_count(flat.size, top_k_percent)
        return float(np.partition(flat, flat.size - k)[flat.size - k :].mean())
    # boundary_weighted
    if weights is None:
        raise InvalidInput("reduction 'boundary_weighted' needs weights=boundary_weights(mask, sigma)")
    w = _check_map(weights, "weights")
    if w.shape != array.shape:
        raise InvalidInput(f"weights must have the shape of values {array.shape}; got {w.shape}")
    if np.any(w < 0) or not np.any(w > 0):
        raise InvalidInput("weights must be non-negative and not all zero; use boundary_weights(mask, sigma)")
    return float(np.sum(w * array) / np.sum(w))


def boundary_weights(mask: npt.ArrayLike, sigma: float) -> npt.NDArray[np.float64]:
    """CEAL boundary weighting of a binary mask ``mask: bool (H, W)`` -> ``float64 (H, W)`` in (0, 1].

    With ``d_in = edt(mask)`` (distance of a foreground pixel to the nearest background pixel) and
    ``d_out = edt(~mask)`` (distance of a background pixel to the nearest foreground pixel), both from
    ``scipy.ndimage.distance_transform_edt`` in pixels, the distance to the boundary is
    ``d = max(d_in, d_out) - 1`` (0 for the pixels on either side of the border) and the weight is
    ``w = exp(-d / sigma)``: 1 on the boundary, decaying with distance inside and outside alike.
    ``sigma`` (pixels, > 0) sets the decay length. An empty or full mask has no boundary: uniform weights 1.
    """
    if not (sigma > 0.0) or math.isinf(sigma):
        raise InvalidInput(f"sigma must be a positive, finite length in pixels; got {sigma}")
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise InvalidInput(f"mask must be a non-empty 2-D array of shape (H, W); got shape {array.shape}")
    foreground = array.astype(bool)
    if foreground.all() or not foreground.any():
        return np.ones(foreground.shape, dtype=np.float64)
    d_in = np.asarray(ndimage.distance_transform_edt(foreground), dtype=np.float64)
    d_out = np.asarray(ndimage.distance_transform_edt(~foreground), dtype=np.float64)
    distance = np.maximum(d_in, d_out) - 1.0  # (H, W); exactly one of d_in, d_out is non-zero per pixel
    return np.exp(-distance / sigma)


def mean_label_map(stats: MCStatistics, threshold: float = 0.5) -> npt.NDArray[np.uint8]:
    """The mean prediction as ``uint8 (H, W)`` labels: ``p̄ > threshold`` for C == 1, else argmax over C."""
    if not (0.0 <= threshold <= 1.0):
        raise InvalidInput(f"threshold must lie in [0, 1]; got {threshold}")
    if stats.mean.shape[0] == 1:
        return np.asarray(stats.mean[0] > threshold, dtype=np.uint8)
    if stats.mean.shape[0] > 256:
        raise InvalidInput(f"a uint8 label map holds at most 256 classes; the model has {stats.mean.shape[0]}")
    return np.asarray(np.argmax(stats.mean, axis=0), dtype=np.uint8)


def image_score(
    stats: MCStatistics,
    measure: str,
    reduction: str,
    *,
    threshold: float = 0.5,
    top_k_percent: float = 5.0,
    boundary_sigma: float = 5.0,
) -> float:
    """One entry of :func:`image_scores`."""
    weights = None
    if reduction == "boundary_weighted":
        weights = boundary_weights(mean_label_map(stats, threshold) != 0, boundary_sigma)
    return reduce_map(stats.measure(measure), reduction, top_k_percent=top_k_percent, weights=weights)


def image_scores(
    stats: MCStatistics, *, threshold: float = 0.5, top_k_percent: float = 5.0, boundary_sigma: float = 5.0
) -> dict[tuple[str, str], float]:
    """Every ``(measure, reduction)`` score of one image: :data:`MEASURES` × :data:`REDUCTIONS`.

    ``"boundary_weighted"`` weights pixels by :func:`boundary_weights` (decay length ``boundary_sigma``
    pixels) of the mean mask: foreground p̄ > ``threshold`` for C == 1, argmax != 0 for C >= 2.
    """
    weights = boundary_weights(mean_label_map(stats, threshold) != 0, boundary_sigma)
    return {
        (measure, reduction): reduce_map(
            stats.measure(measure), reduction, top_k_percent=top_k_percent, weights=weights
        )
        for measure in MEASURES
        for reduction in REDUCTIONS
    }


def confidence(stats: MCStatistics) -> float:
    """``1 - mean(H(p̄)) / log K`` in [0, 1]: 1 when every pixel is certain (CEAL pseudo-label selection)."""
    return float(np.clip(1.0 - float(np.mean(stats.entropy, dtype=np.float64)) / math.log(stats.num_classes), 0, 1))
