"""Exact retrieval: the top k by cosine of centred descriptors, equal to brute force, recall 1 on isotropic data."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.engine.core import PredictOptions
from ceal.service.errors import InvalidInput, NotFound
from ceal.service.pool.retrieval import find_similar, similar_in_pool
from ceal.service.store import ScoreRow


def _brute(descriptors: np.ndarray, query: np.ndarray, exclude: int) -> list[float]:
    """Every other row's cosine to the query after centring, in float64 and plain Python, best first."""
    centred = descriptors - descriptors.mean(axis=0)
    q = query - descriptors.mean(axis=0)
    sims = [
        float(row @ q / max(np.linalg.norm(row), 1e-12) / max(np.linalg.norm(q), 1e-12))
        for i, row in enumerate(centred)
        if i != exclude
    ]
    return sorted(sims, reverse=True)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(1, 16), k=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_equals_brute_force(n: int, d: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    descriptors = rng.standard_normal((n, d)).astype(np.float32)
    exclude = int(rng.integers(n))
    got = find_similar(descriptors, descriptors[exclude], k, exclude=exclude)
    want = _brute(descriptors.astype(np.float64), descriptors[exclude].astype(np.float64), exclude)[:k]
    # the k best similarities (float32 may order near-ties differently, so values, not indices)
    np.testing.assert_allclose([m.similarity for m in got], want, atol=1e-4)
    assert len(got) == min(k, n - 1) and exclude not in [m.index for m in got]
    sims = [m.similarity for m in got]
    assert sims == sorted(sims, reverse=True) and all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for s in sims)


def test_recall_is_one_on_isotropic_descriptors() -> None:
    """Where SimHash's pre-filter kept the true neighbours for 0-20 % of queries: 10 of 10, every query."""
    rng = np.random.default_rng(0)
    descriptors = rng.standard_normal((5000, 256)).astype(np.float32)
    centred = descriptors - descriptors.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    for q in range(0, 5000, 500):
        truth = np.argsort(-(unit @ unit[q]), kind="stable")[1:11]
        got = [m.index for m in find_similar(descriptors, descriptors[q], 10, exclude=q)]
        assert set(got) == set(truth.tolist())


def test_centring_separates_what_all_descriptors_share() -> None:
    """ReLU-like features with a large common offset: raw cosine calls everything ~1, centred cosine does not."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal((200, 32)).astype(np.float32)
    descriptors = base + 50.0
    got = find_similar(descriptors, descriptors[0], 5, exclude=0)
    centred = base - base.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    truth = np.argsort(-(unit @ unit[0]), kind="stable")[1:6]
    assert [m.index for m in got] == truth.tolist() and got[-1].similarity < 0.9


def test_edges() -> None:
    d = np.ones((3, 4), np.float32)
    assert find_similar(d[:0], d[0], 3) == []
    assert find_similar(d, d[0], 0) == []
    assert find_similar(d[:1], d[0], 3, exclude=0) == []
    with pytest.raises(InvalidInput, match="does not match"):
        find_similar(d, np.ones(5, np.float32), 2)


class _Engine:
    """Records the engine calls a search makes; the query image's descriptor is its first row of pixels."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float | None]] = []

    def predict(self, model: object, pixels: np.ndarray, opts: PredictOptions, *, deadline: float | None) -> object:
        self.calls.append((opts.samples, deadline))
        return SimpleNamespace(descriptor=pixels[0].astype(np.float32))


def _scored_pool(n: int) -> tuple[object, list[str]]:
    ids = [f"img-{i}" for i in range(n)]
    eye = np.eye(n, dtype=np.float32)
    rows = [ScoreRow(i, "unet", 1, 0.5, 0.1, 0.01, 0.9, 9.0, 1, 0.2, descriptor=eye[n_]) for n_, i in enumerate(ids)]
    return SimpleNamespace(score_rows=lambda pool, name, version: rows if pool == "p" else []), ids


def test_a_query_image_is_described_through_the_engine_once_and_a_pool_image_never() -> None:
    store, ids = _scored_pool(4)
    engine = _Engine()
    model = SimpleNamespace(meta=SimpleNamespace(name="unet", version=1))
    by_id = similar_in_pool(cast(Any, store), cast(Any, engine), cast(Any, model), "p", ids[2], 2)
    assert len(by_id) == 2 and ids[2] not in {i for i, _ in by_id} and engine.calls == []
    pixels = np.eye(4, dtype=np.float32)[1:2]  # its descriptor is pool image 1's
    (best,) = similar_in_pool(cast(Any, store), cast(Any, engine), cast(Any, model), "p", pixels, 1, 12.5)
    assert best[0] == ids[1] and best[1] == pytest.approx(1.0)
    assert engine.calls == [(1, 12.5)]  # one pass (the prefix's descriptor), with the call's deadline
    with pytest.raises(NotFound, match="run ScorePool first"):  # nothing scored: refused before any inference
        similar_in_pool(cast(Any, store), cast(Any, engine), cast(Any, model), "empty", pixels, 1)
    with pytest.raises(InvalidInput, match="set image_id or image"):
        similar_in_pool(cast(Any, store), cast(Any, engine), cast(Any, model), "p", None, 1)
    assert len(engine.calls) == 1
