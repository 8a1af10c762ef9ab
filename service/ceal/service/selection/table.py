"""What every strategy reads (`ScoreTable`) and returns (`Selection`).

A score table holds one row per pool image: its image-level uncertainties, the shape of its predicted mask
(for the annotation-time model) and, optionally, encoder features and the series it belongs to. Arrays are
copied on construction and made read-only, so a table cannot change under a strategy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from ceal.service.errors import InvalidInput

__all__ = ["MEASURES", "FloatArray", "IndexArray", "ScoreTable", "Selection"]

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

# Uncertainty measures a strategy may rank by: table field -> words for the reasons.
MEASURES: Final[dict[str, str]] = {
    "entropy": "predictive entropy",
    "mutual_information": "mutual information",
    "variance": "variance",
}

_PER_IMAGE_FIELDS: Final = (
    "entropy",
    "mutual_information",
    "variance",
    "confidence",
    "boundary_length",
    "components",
)


def _frozen_column(name: str, values: object, n: int) -> FloatArray:
    """A read-only float64 copy of `values`, checked to be (n,)."""
    column = np.array(values, dtype=np.float64)
    if column.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D, one value per image; got shape {column.shape}")
    if column.shape[0] != n:
        raise InvalidInput(
            f"{name} has {column.shape[0]} values but image_ids has {n}; give exactly one value per image"
        )
    column.setflags(write=False)
    return column


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """Image-level scores of a pool, one row per image (N rows).

    entropy, mutual_information, variance: (N,) mean per-pixel uncertainties; higher = more uncertain.
    confidence: (N,) 1 - normalised mean entropy, in [0, 1]; higher = more confident.
    boundary_length: (N,) pixels on the boundary of the predicted mask.
    components: (N,) connected components of the predicted mask.
    descriptors: (N, D) float32 encoder bottleneck features, or None.
    series_keys: (N,) the series each image belongs to, or None (each image is its own series).
    version_disagreement: (N,) mean pairwise Dice disagreement of the last K model versions' masks
    (`selection.ensemble`), or None where no earlier versions scored the pool.
    foreground_fraction: (N,) share of the image's pixels in the predicted mask, or None where the scores
    have none (the foreground-aware random baseline then sizes findings by boundary length).
    NaN marks a missing score; strategies rank it last.
    """

    image_ids: tuple[str, ...]
    entropy: FloatArray
    mutual_information: FloatArray
    variance: FloatArray
    confidence: FloatArray
    boundary_length: FloatArray
    components: FloatArray
    descriptors: npt.NDArray[np.float32] | None = None
    series_keys: tuple[str, ...] | None = None
    version_disagreement: FloatArray | None = None
    foreground_fraction: FloatArray | None = None

    def __post_init__(self) -> None:
        ids = tuple(self.image_ids)
        object.__setattr__(self, "image_ids", ids)
        n = len(ids)
        duplicates = [image_id for image_id, count in Counter(ids).items() if count > 1]
        if duplicates:
            first = ids.index(duplicates[0])
            raise InvalidInput(f"image_ids must be unique; {len(duplicates)} ids repeat (the first at row {first})")
        for name in _PER_IMAGE_FIELDS:
            object.__setattr__(self, name, _frozen_column(name, getattr(self, name), n))
        for name in ("boundary_length", "components"):
            if np.any(getattr(self, name) < 0):  # NaN compares False: missing stays allowed
                raise InvalidInput(f"{name} counts pixels or pieces of a mask, so it must be >= 0")
        if self.descriptors is not None:
            descriptors = np.array(self.descriptors, dtype=np.float32)
            if descriptors.ndim != 2 or descriptors.shape[0] != n:
                raise InvalidInput(f"descriptors must be (N, D) with N = {n} images; got shape {descriptors.shape}")
            descriptors.setflags(write=False)
            object.__setattr__(self, "descriptors", descriptors)
        for name in ("version_disagreement", "foreground_fraction"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _frozen_column(name, getattr(self, name), n))
        if self.foreground_fraction is not None and np.any(self.foreground_fraction < 0):
            raise InvalidInput("foreground_fraction is a share of the image's pixels, so it must be >= 0")
        if self.series_keys is not None:
            keys = tuple(self.series_keys)
            if len(keys) != n:
                raise InvalidInput(f"series_keys has {len(keys)} keys but image_ids has {n}; give one key per image")
            object.__setattr__(self, "series_keys", keys)

    def __len__(self) -> int:
        return len(self.image_ids)

    def measure(self, name: str) -> FloatArray:
        """(N,) the uncertainty measure called `name` (one of `MEASURES`)."""
        if name not in MEASURES:
            raise InvalidInput(f"unknown uncertainty measure {name!r}; choose one of {sorted(MEASURES)}")
        column: FloatArray = getattr(self, name)
        return column


def _check_parallel(names: tuple[str, ...], columns: tuple[tuple[object, ...], ...]) -> None:
    lengths = {name: len(column) for name, column in zip(names, columns, strict=True)}
    if len(set(lengths.values())) > 1:
        raise InvalidInput(f"{' / '.join(names)} must have equal lengths; got {lengths}")


@dataclass(frozen=True)
class Selection:
    """A strategy's answer. Indices address rows of the `ScoreTable` it was given.

    query: indices for the human, ranked (first = ask first).
    scores: the value ranked by, in query order (what it is depends on the strategy; see `reasons`).
    reasons: one sentence per query item saying why it was chosen.
    estimated_seconds: predicted annotation time per query item, in seconds.
    pseudo: indices whose predicted masks may stand in as labels (CEAL), most confident first.
    pseudo_scores: confidence of each pseudo item, same order.
    pseudo_reasons: one sentence per pseudo item.
    strategy: the registry name of the strategy that made it.
    """

    query: tuple[int, ...]
    scores: tuple[float, ...]
    reasons: tuple[str, ...]
    estimated_seconds: tuple[float, ...]
    pseudo: tuple[int, ...] = ()
    pseudo_scores: tuple[float, ...] = ()
    pseudo_reasons: tuple[str, ...] = ()
    strategy: str = ""

    def __post_init__(self) -> None:
        _check_parallel(
            ("query", "scores", "reasons", "estimated_seconds"),
            (self.query, self.scores, self.reasons, self.estimated_seconds),
        )
        _check_parallel(
            ("pseudo", "pseudo_scores", "pseudo_reasons"),
            (self.pseudo, self.pseudo_scores, self.pseudo_reasons),
        )
        if len(set(self.query)) != len(self.query) or len(set(self.pseudo)) != len(self.pseudo):
            raise InvalidInput("query and pseudo must not repeat an index")
        if set(self.query) & set(self.pseudo):
            raise InvalidInput("an image cannot be both queried and pseudo-labelled")

    def __len__(self) -> int:
        return len(self.query)

    @property
    def total_seconds(self) -> float:
        """Predicted annotation time of the whole query list, in seconds."""
        return float(sum(self.estimated_seconds))
