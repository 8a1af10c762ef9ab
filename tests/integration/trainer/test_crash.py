"""Must show: kill -9 of `ceal trainer` during training and during export; a restart finishes the turn and no
partial version is ever listed or loaded by the server watching the folder."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ceal.client import Client
from ceal.service.promotion import read_record
from ceal.service.server import Running
from tests.integration.trainer import scenario
from tests.support.server import in_process

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Running, Path]]:
    models = tmp_path / "models"
    scenario.version_1(tmp_path, models)
    with in_process(models, tmp_path / "state") as running:
        yield running, models


def _trainer(address: str, models: Path, work: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "ceal.cli.main", "trainer", "--once", "--server", address, "--models", str(models)]
    cmd += ["--work", str(work), "--pool", scenario.POOL, "--epochs", "3", "--lr", "2e-3", "--eval-samples", "4"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def _kill_on(proc: subprocess.Popen[bytes], marker: bytes) -> bytes:
    """Read the trainer's output until `marker` appears, then SIGKILL it at once; returns what it wrote."""
    assert proc.stdout is not None
    seen = b""
    while marker not in seen:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"the trainer ended before {marker!r}:\n{seen.decode(errors='replace')[-3000:]}")
        seen += chunk
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return seen


def _only_version_1(running: Running, client: Client, models: Path) -> None:
    running.registry.scan()
    assert [(m.version, m.is_latest) for m in client.list_models()] == [(1, True)]
    assert sorted(p.name for p in (models / "lesion").iterdir() if p.name.isdigit()) == ["1"]
    assert client.predict(scenario.synth_dataset(1).images[0]).model_version == 1


def test_kill_9_in_training_and_in_export_never_leaves_a_partial_version(
    served: tuple[Running, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running, models = served
    address, work = f"127.0.0.1:{running.port}", tmp_path / "work"
    caplog.set_level(logging.INFO, logger="ceal.service.registry")
    with Client(address, timeout=120) as client:
        ids, masks = scenario.fill_pool(client)
        scenario.new_batch(client, ids, masks, inverted=False)

        # 1. killed in the middle of training (the progress bar has counted the first epoch)
        out = _kill_on(_trainer(address, models, work), b"1/3 [")
        assert b"stage train" in out and b"stage export" not in out
        _only_version_1(running, client, models)

        # 2. killed in the middle of the export: the candidate's ONNX is staged, its metadata not yet written
        out = _kill_on(_trainer(address, models, work), b"candidate staged as")
        staged = list((models / "lesion").glob(".staging-*"))
        assert staged and not (staged[0] / "metadata.json").exists()
        _only_version_1(running, client, models)

        # 3. a restart cleans up and finishes the turn
        proc = _trainer(address, models, work)
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, stdout.decode(errors="replace")[-3000:]
        text = stdout.decode(errors="replace")
        assert "removed the unfinished export" in text and "trainer: promoted" in text, text[-3000:]
        assert not list((models / "lesion").glob(".staging-*")) and not (work / "train-in-progress").exists()
        record = read_record(models / "lesion")
        assert record is not None and record.served == 2
        scenario.wait_served(client, 2)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == []  # the server never tried to load a partial version
    loaded = [r.getMessage() for r in caplog.records if "loaded" in r.getMessage() or "served" in r.getMessage()]
    assert all("version 1" in m or "version 2" in m for m in loaded)
