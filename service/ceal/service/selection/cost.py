"""Annotation time and the 0/1 knapsack behind cost-sensitive selection (Kuo et al. 2018).

Drawing a mask takes longer the longer its boundary and the more separate pieces it has, so the predicted
mask's boundary length and component count predict the seconds a radiologist will spend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import nnls

from ceal.service.errors import InvalidInput

from .table import FloatArray

__all__ = ["MAX_SECONDS", "MIN_FIT_OBSERVATIONS", "MIN_SECONDS", "AnnotationCostModel", "knapsack"]

# Fewer observations than this leave a three-coefficient fit at the mercy of one odd label.
MIN_FIT_OBSERVATIONS: Final = 5
# Predictions are clamped to this range, in seconds: a weak model's ragged mask (a boundary of thousands of
# pixels on a 128 x 128 slice) once predicted 10,084 s for one image, which no radiologist spends.
MIN_SECONDS: Final = 1.0
MAX_SECONDS: Final = 600.0


def _column(name: str, values: object) -> FloatArray:
    column = np.asarray(values, dtype=np.float64)
    if column.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D, one value per image; got shape {column.shape}")
    return column


@dataclass(frozen=True)
class AnnotationCostModel:
    """Predicted annotation time of a mask, in seconds:

    seconds = intercept_seconds + seconds_per_boundary_pixel · boundary + seconds_per_component · components,

    clamped to [min_seconds, max_seconds]. The defaults are a prior for a lesion outlined by hand; `fit`
    replaces the coefficients with what annotators took (the clamp stays). fitted_on: how many labels the
    coefficients were fitted on (0 = the defaults).
    """

    intercept_seconds: float = 20.0
    seconds_per_boundary_pixel: float = 0.15
    seconds_per_component: float = 10.0
    fitted_on: int = 0
    min_seconds: float = MIN_SECONDS
    max_seconds: float = MAX_SECONDS

    def __post_init__(self) -> None:
        coefficients = (self.intercept_seconds, self.seconds_per_boundary_pixel, self.seconds_per_component)
        if not all(np.isfinite(c) and c >= 0 for c in coefficients):
            raise InvalidInput(f"annotation cost coefficients must be finite and >= 0; got {coefficients}")
        if not (np.isfinite(self.max_seconds) and 0 <= self.min_seconds <= self.max_seconds):
            raise InvalidInput(
                f"the clamp must satisfy 0 <= min_seconds <= max_seconds < inf; got {self.min_seconds}, "
                f"{self.max_seconds}"
            )

    def predict(self, boundary_length: npt.ArrayLike, components: npt.ArrayLike) -> FloatArray:
        """(N,) predicted seconds for masks with (N,) boundary pixels and (N,) components.

        A NaN input gives a NaN prediction: the time of such a mask is unknown. Others are clamped to
        [min_seconds, max_seconds] (an infinite boundary gives max_seconds).
        """
        boundary = _column("boundary_length", boundary_length)
        pieces = _column("components", components)
        if boundary.shape != pieces.shape:
            raise InvalidInput(
                f"boundary_length and components must have equal lengths; got {boundary.size} and {pieces.size}"
            )
        raw = self.intercept_seconds + self.seconds_per_boundary_pixel * boundary + self.seconds_per_component * pieces
        seconds: FloatArray = np.clip(raw, self.min_seconds, self.max_seconds)  # NaN stays NaN
        return seconds

    def fit(
        self, boundary_length: npt.ArrayLike, components: npt.ArrayLike, seconds: npt.ArrayLike
    ) -> AnnotationCostModel:
        """A model fitted to observed labels: (N,) boundary pixels, (N,) components, (N,) seconds spent.

        Least squares with every coefficient >= 0 (a longer boundary never makes drawing faster). Rows with a
        non-finite or negative value are skipped; with fewer than MIN_FIT_OBSERVATIONS rows left this model
        is returned unchanged.
        """
        boundary = _column("boundary_length", boundary_length)
        pieces = _column("components", components)
        spent = _column("seconds", seconds)
        if not boundary.size == pieces.size == spent.size:
            raise InvalidInput(
                "boundary_length, components and seconds must have equal lengths; "
                f"got {boundary.size}, {pieces.size} and {spent.size}"
            )
        rows = np.column_stack([np.ones_like(boundary), boundary, pieces, spent])  # (N, 4)
        usable = np.all(np.isfinite(rows) & (rows >= 0), axis=1)
        rows = rows[usable]
        if rows.shape[0] < MIN_FIT_OBSERVATIONS:
            return self
        coefficients, _ = nnls(rows[:, :3], rows[:, 3])
        intercept, per_pixel, per_component = (float(c) for c in coefficients)
        return AnnotationCostModel(
            intercept,
            per_pixel,
            per_component,
            fitted_on=int(rows.shape[0]),
            min_seconds=self.min_seconds,
            max_seconds=self.max_seconds,
        )


def knapsack(values: npt.ArrayLike, weights: npt.ArrayLike, capacity: int) -> list[int]:
    """Indices (ascending) of an optimal 0/1 knapsack: maximise the sum of (N,) values subject to the sum of
    (N,) non-negative integer weights <= capacity.

    Exact dynamic programme over integer capacities: O(N · capacity) time, N · (capacity + 1) bytes of
    memory. Items of value <= 0 are never taken (they cannot help).
    """
    value = np.asarray(values, dtype=np.float64)
    weight = np.asarray(weights)
    if value.ndim != 1 or weight.shape != value.shape:
        raise InvalidInput(
            f"values and weights must be 1-D and of equal length; got shapes {value.shape} and {weight.shape}"
        )
    if not np.all(np.isfinite(value)):
        raise InvalidInput("knapsack values must be finite; drop items with missing scores first")
    if weight.size and not np.issubdtype(weight.dtype, np.integer):
        raise InvalidInput(f"knapsack weights must be integers (round seconds up first); got {weight.dtype}")
    weight = weight.astype(np.int64)
    if np.any(weight < 0):
        raise InvalidInput("knapsack weights must be >= 0")
    if capacity < 0:
        raise InvalidInput(f"knapsack capacity must be >= 0; got {capacity}")

    useful = np.flatnonzero((value > 0) & (weight <= capacity))
    if int(weight[useful].sum()) <= capacity:  # everything useful fits: no search needed
        return [int(i) for i in useful]

    best = np.zeros(capacity + 1, dtype=np.float64)  # best[c]: top value with total weight <= c
    taken = np.zeros((useful.size, capacity + 1), dtype=np.bool_)  # taken[j, c]: item j in best at c
    for j, row in enumerate(useful):
        w = int(weight[row])
        with_item = best[: capacity + 1 - w] + value[row]  # a copy: reads the table before item j
        better = with_item > best[w:]
        taken[j, w:] = better
        best[w:] = np.where(better, with_item, best[w:])

    chosen: list[int] = []
    room = capacity
    for j in range(useful.size - 1, -1, -1):
        if taken[j, room]:
            item = int(useful[j])
            chosen.append(item)
            room -= int(weight[item])
    return sorted(chosen)
