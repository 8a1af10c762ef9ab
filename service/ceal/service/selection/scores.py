"""Image-level scores as the strategies read them, and the `ScoreTable` built from them.

`ImageScores` is one image's row (what the engine's `image_scores` makes from its Monte-Carlo samples);
`score_table` stacks any rows with those fields (an `ImageScores`, or the store's `ScoreRow`, which has the
same ones) into a table. Pure: the pool's query code and the simulation build their tables here alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .table import ScoreTable

__all__ = ["ImageScores", "ScoredImage", "score_table"]


@dataclass(frozen=True)
class ImageScores:
    """One image's scores: mean entropy / mutual information / variance (nats, nats, probability²), the
    confidence, the predicted mask's boundary length (pixels) and component count, its foreground fraction,
    and the encoder descriptor (D,) float32 or None."""

    image_id: str
    entropy: float
    mutual_information: float
    variance: float
    confidence: float
    boundary_length: float
    components: int
    foreground_fraction: float
    descriptor: np.ndarray | None = field(default=None, compare=False)


class ScoredImage(Protocol):
    """Anything with an image's scores (`ImageScores`, the store's `ScoreRow`)."""

    @property
    def image_id(self) -> str: ...
    @property
    def entropy(self) -> float: ...
    @property
    def mutual_information(self) -> float: ...
    @property
    def variance(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def boundary_length(self) -> float: ...
    @property
    def foreground_fraction(self) -> float: ...
    @property
    def components(self) -> int: ...
    @property
    def descriptor(self) -> np.ndarray | None: ...


def score_table(rows: Sequence[ScoredImage], group_keys: Sequence[str]) -> ScoreTable:
    """Rows → a ScoreTable (descriptors when every row has one); `group_keys[i]` is row i's series (or study)
    key, what `rank_series` groups by."""
    descriptors = None
    if rows and all(r.descriptor is not None for r in rows):
        descriptors = np.stack([r.descriptor for r in rows]).astype(np.float32)  # type: ignore[misc]
    return ScoreTable(
        image_ids=tuple(r.image_id for r in rows),
        entropy=np.array([r.entropy for r in rows], dtype=np.float64),
        mutual_information=np.array([r.mutual_information for r in rows], dtype=np.float64),
        variance=np.array([r.variance for r in rows], dtype=np.float64),
        confidence=np.array([r.confidence for r in rows], dtype=np.float64),
        boundary_length=np.array([r.boundary_length for r in rows], dtype=np.float64),
        components=np.array([r.components for r in rows], dtype=np.float64),
        descriptors=descriptors,
        series_keys=tuple(group_keys),
        foreground_fraction=np.array([r.foreground_fraction for r in rows], dtype=np.float64),
    )
