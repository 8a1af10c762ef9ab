"""Fixtures for the pool-store tests. `store` is parametrised by backend so Postgres can join the same suite
(add "postgres" to its params, marked `postgres`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ceal.service.store import PoolStore, ScoreRow, SQLitePoolStore

START = 1_700_000_000.0


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def advance(clock: FakeClock) -> Callable[[float], None]:
    """advance(seconds) moves the store's clock forward."""

    def move(seconds: float) -> None:
        clock.now += seconds

    return move


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[PoolStore]:
    backend: PoolStore
    if request.param == "sqlite":
        backend = SQLitePoolStore(tmp_path / "pool.sqlite3", clock=clock)
    else:  # pragma: no cover - a backend named in params but not built here
        raise AssertionError(f"no fixture for backend {request.param}")
    with backend:
        yield backend


@pytest.fixture
def pixels() -> Callable[..., np.ndarray]:
    """pixels(seed, shape=(6, 5), dtype=uint16): a distinct random image per seed."""

    def make(seed: int, shape: tuple[int, ...] = (6, 5), dtype: type = np.uint16) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 200, size=shape).astype(dtype)

    return make


@pytest.fixture
def score() -> Callable[..., ScoreRow]:
    """score(image_id, version=1, model="unet", **fields): a ScoreRow with plausible numbers."""

    def make(image_id: str, version: int = 1, model: str = "unet", **fields: object) -> ScoreRow:
        values: dict[str, object] = {
            "entropy": 0.25,
            "mutual_information": 0.05,
            "variance": 0.01,
            "confidence": 0.9,
            "boundary_length": 40.0,
            "components": 1,
            "foreground_fraction": 0.2,
        }
        values.update(fields)
        return ScoreRow(image_id=image_id, model_name=model, model_version=version, **values)  # type: ignore[arg-type]

    return make
