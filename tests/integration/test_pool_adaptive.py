"""Adaptive T over real gRPC: ScorePool and Predict with adaptive_tolerance / adaptive_min_samples.

The engine's batcher is wrapped to see how many samples each image drew; the model is the trained tiny U-Net
(`models_dir`), so the stopping rule meets real uncertainty, not a random network's.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest

from ceal.client import Client, InvalidArgument
from ceal.service.engine.loaded import Samples
from ceal.service.server import Running
from tests.support.models import synth_dataset

POOL = "adaptive"
T_MAX = 20


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return synth_dataset(6, seed=21).images


@pytest.fixture
def drawn(server: Running, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[int]]:
    """drawn() → the samples T of every image the engine ran since the fixture started, in submit order."""
    batcher = server.engine.batcher
    futures: list[Future[Samples]] = []
    submit = batcher.submit

    def recording(*args: Any, **kwargs: Any) -> Future[Samples]:
        future = submit(*args, **kwargs)
        futures.append(future)
        return future

    monkeypatch.setattr(batcher, "submit", recording)
    return lambda: [int(f.result().probabilities.shape[1]) for f in futures]


def test_adaptive_pool_scoring_scores_every_image_with_fewer_samples(
    address: str, data: np.ndarray, drawn: Callable[[], list[int]]
) -> None:
    with Client(address) as client:
        client.register_images(list(data), pool=POOL)
        final = client.score_pool(pool=POOL, samples=T_MAX, adaptive_tolerance=1.0, adaptive_min_samples=4)
        stats = client.pool_stats(pool=POOL)
        adaptive = drawn()
        client.score_pool(pool=POOL, samples=T_MAX, force=True)  # fixed T on the same server, for contrast
        ranked = client.query_list(pool=POOL, strategy="bald", k=len(data))
    assert (final.done, final.total, final.finished) == (len(data), len(data), True)
    assert stats.scored_fresh == len(data)
    assert adaptive == [4] * len(data)  # a loose tolerance stops each image at its floor, far below T_max
    assert drawn()[len(data) :] == [T_MAX] * len(data)
    assert len(ranked.items) == len(data)


def test_a_tight_tolerance_keeps_sampling_to_t_max(
    address: str, data: np.ndarray, drawn: Callable[[], list[int]]
) -> None:
    with Client(address) as client:
        client.register_images(list(data[:3]), pool=POOL)
        client.score_pool(pool=POOL, samples=12, adaptive_tolerance=1e-12)
    assert drawn() == [12] * 3


def test_predict_honours_the_floor(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        loose = client.predict(data[0], samples=T_MAX, seed=1, adaptive_tolerance=1.0, adaptive_min_samples=12)
        default = client.predict(data[0], samples=T_MAX, seed=1, adaptive_tolerance=1.0)
    assert loose.samples == 12
    assert default.samples == 8


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"adaptive_tolerance": -0.5}, "adaptive_tolerance must be >= 0"),
        ({"adaptive_tolerance": float("nan")}, "adaptive_tolerance is nan; send a finite number"),
        ({"adaptive_tolerance": 1e-3, "adaptive_min_samples": 3}, "between 4"),
        ({"adaptive_tolerance": 1e-3, "adaptive_min_samples": T_MAX + 1}, "between 4"),
        ({"adaptive_min_samples": 8}, "set adaptive_tolerance > 0"),
    ],
)
def test_bad_adaptive_options_are_invalid_argument(
    address: str, data: np.ndarray, options: dict[str, float], match: str
) -> None:
    with Client(address) as client:
        client.register_images(list(data[:1]), pool=POOL)
        with pytest.raises(InvalidArgument, match=match):
            client.score_pool(pool=POOL, samples=T_MAX, **options)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match=match):
            client.predict(data[0], samples=T_MAX, **options)
        assert client.pool_stats(pool=POOL).scored_fresh == 0  # refused before anything was scored
