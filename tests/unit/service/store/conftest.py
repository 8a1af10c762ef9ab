"""Fixtures for the pool-store tests. `store` (through `state`) is parametrised by backend: every contract test
runs on SQLite and on Postgres (marked `postgres`; the cluster is the session fixture in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ceal.service.store import PoolStore, ScoreRow, open_store

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty store lives, for `open_store`: a folder (SQLite) or a new Postgres database's URL.
    Processes a test starts open the same store from it."""
    if request.param == "sqlite":
        return str(tmp_path)
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))  # the session cluster starts only when needed
    raise AssertionError(f"no fixture for backend {request.param}")  # pragma: no cover


@pytest.fixture
def store(state: str, clock: FakeClock) -> Iterator[PoolStore]:
    with open_store(state, clock=clock) as backend:
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
