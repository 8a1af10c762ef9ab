"""A factory for small hand-made score tables: give the entropies, override what the test is about."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from ceal.service.selection import ScoreTable


def _make_table(
    entropy: Sequence[float],
    *,
    mutual_information: Sequence[float] | None = None,
    variance: Sequence[float] | None = None,
    confidence: Sequence[float] | None = None,
    boundary_length: Sequence[float] | None = None,
    components: Sequence[float] | None = None,
    descriptors: object = None,
    series_keys: Sequence[str] | None = None,
    version_disagreement: Sequence[float] | None = None,
) -> ScoreTable:
    """A table of len(entropy) images named img0, img1, ...; unset measures copy the entropy."""
    h = np.asarray(entropy, dtype=np.float64)
    n = h.size
    return ScoreTable(
        image_ids=tuple(f"img{i}" for i in range(n)),
        entropy=h,
        mutual_information=np.asarray(h if mutual_information is None else mutual_information, dtype=float),
        variance=np.asarray(h if variance is None else variance, dtype=float),
        confidence=np.asarray(np.clip(1 - h / np.log(2), 0, 1) if confidence is None else confidence, dtype=float),
        boundary_length=np.asarray(np.full(n, 100.0) if boundary_length is None else boundary_length, dtype=float),
        components=np.asarray(np.ones(n) if components is None else components, dtype=float),
        descriptors=None if descriptors is None else np.asarray(descriptors, dtype=np.float32),
        series_keys=None if series_keys is None else tuple(series_keys),
        version_disagreement=None if version_disagreement is None else np.asarray(version_disagreement, dtype=float),
    )


@pytest.fixture(scope="session")  # session scope: usable inside hypothesis tests
def make_table() -> Callable[..., ScoreTable]:
    return _make_table
