"""Fixtures shared by every test folder: a trained tiny model and a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ceal.service.server import Running
from tests.support.models import export_checkpoint, train_tiny
from tests.support.postgres import PostgresCluster, PostgresUnavailableError, running_postgres
from tests.support.server import in_process


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny U-Net trained on synthetic lesions (session-wide: trained once)."""
    return train_tiny(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, trained_checkpoint: Path) -> Path:
    """A models folder holding `lesion/1` exported from the trained checkpoint. Read-only for tests."""
    models = tmp_path_factory.mktemp("models")
    export_checkpoint(trained_checkpoint, models)
    return models


@pytest.fixture
def server(models_dir: Path, tmp_path: Path) -> Iterator[Running]:
    """A real server on 127.0.0.1:0 with a fresh pool store."""
    with in_process(models_dir, tmp_path / "state") as running:
        yield running


@pytest.fixture
def address(server: Running) -> str:
    return f"127.0.0.1:{server.port}"


# ── PostgreSQL (Postgres pool store, scale-out across replicas) ─────────────────────────────────────────────
# One throwaway cluster per test session, on a free 127.0.0.1 port in its own temp folder
# (tests/support/postgres.py), started only when a test asks for it. Missing binaries FAIL the test (never
# skip): run scripts/install-system-deps.


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A running PostgreSQL cluster; `postgres.create_database()` gives the URL of a fresh database."""
    try:
        with running_postgres() as cluster:
            yield cluster
    except PostgresUnavailableError as error:
        pytest.fail(f"PostgreSQL is unavailable: {error}", pytrace=False)


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> str:
    """The URL of a new, empty schema on the session's cluster (use `postgres.create_database()` for a whole
    database, e.g. to change database settings)."""
    return postgres.create_schema()


# ── end PostgreSQL ──────────────────────────────────────────────────────────────────────────────────────────
