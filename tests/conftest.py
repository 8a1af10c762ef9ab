"""Fixtures shared by every test folder: a trained tiny model and a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ceal.service.server import Running
from tests.support.models import export_checkpoint, train_tiny
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
