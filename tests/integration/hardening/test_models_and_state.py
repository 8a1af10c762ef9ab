"""Models checked on load and state files checked at start (issue 21): a version whose metadata disagrees with
its folder or its graph is refused with the reason in ListModels, never served, and the previous version keeps
serving; an empty or foreign state file stops the start with a clear message; a full disk says "disk full"."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from ceal.client import requests
from ceal.service.metadata import METADATA_FILE
from ceal.service.server import Running
from ceal.service.store import open_store
from ceal.service.store.base import NewImage
from ceal.service.store.errors import StoreError
from ceal.service.store.factory import SQLITE_FILENAME
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from tests.integration.hardening.conftest import WAIT, wait_until
from tests.support.server import in_process


def _new_version(models: Path, folder: int, changes: dict[str, object] | None = None) -> Path:
    """Copy lesion/1 to lesion/<folder>, its metadata saying that version and changed by `changes`."""
    target = models / "lesion" / str(folder)
    shutil.copytree(models / "lesion" / "1", target)
    meta = json.loads((target / METADATA_FILE).read_text())
    meta.update({"version": folder, **(changes or {})})
    contract = {"input_channels": "channels", "input_height": "height", "input_width": "width"}
    for key, value in (changes or {}).items():  # the preprocessing contract says the same: only the graph disagrees
        if key in contract and meta.get("preprocessing"):
            meta["preprocessing"][contract[key]] = value
    (target / METADATA_FILE).write_text(json.dumps(meta))
    return target


@pytest.fixture
def models(models_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    return copy


@pytest.fixture
def serving(models: Path, tmp_path: Path) -> Iterator[tuple[Running, seg_grpc.SegmentationStub]]:
    with (
        in_process(models, tmp_path / "state") as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield running, seg_grpc.SegmentationStub(channel)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"input_channels": 1}, "metadata says input channels 1 but the graph takes 3"),
        ({"input_height": 96, "input_width": 128}, "metadata says input height 96 but the graph takes 48"),
        ({"num_classes": 3, "class_names": ["a", "b", "c"]}, "trial inference gave probabilities of shape"),
        ({"name": "other"}, "metadata names model 'other' version 2 but it lies in lesion/2"),
        ({"version": 7}, "metadata names model 'lesion' version 7 but it lies in lesion/2"),
    ],
    ids=["channels", "size", "classes", "name", "version"],
)
def test_a_new_version_that_disagrees_is_refused_and_the_previous_keeps_serving(
    serving: tuple[Running, seg_grpc.SegmentationStub],
    models: Path,
    image: np.ndarray,
    changes: dict[str, object],
    reason: str,
) -> None:
    running, stub = serving
    _new_version(models, 2, changes)  # lesion/2, its metadata changed
    wait_until(lambda: bool(running.registry.refused()), "the watcher to try the new version")
    listed = stub.ListModels(seg_pb.ListModelsRequest(), timeout=WAIT)
    assert [(m.name, m.version, m.is_latest) for m in listed.models] == [("lesion", 1, True)]
    assert [(r.name, r.version) for r in listed.refused] == [("lesion", 2)]
    assert reason in listed.refused[0].reason
    reply = stub.Predict(requests.predict_request(image, samples=2), timeout=WAIT)
    assert (reply.model_name, reply.model_version) == ("lesion", 1)  # the default is still version 1
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(requests.predict_request(image, samples=2, version=2), timeout=WAIT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and reason in (info.value.details() or "")


def test_a_version_that_agrees_passes_its_trial_and_becomes_the_default(
    serving: tuple[Running, seg_grpc.SegmentationStub], models: Path, image: np.ndarray
) -> None:
    running, stub = serving
    _new_version(models, 2)
    wait_until(lambda: any(m.meta.version == 2 for m in running.registry.models()), "version 2 to load")
    reply = stub.Predict(requests.predict_request(image, samples=2), timeout=WAIT)
    assert reply.model_version == 2 and not stub.ListModels(seg_pb.ListModelsRequest(), timeout=WAIT).refused


def test_a_zero_length_state_file_is_refused_at_start(models_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / SQLITE_FILENAME).write_bytes(b"")
    empty = r"is empty \(0 bytes\).*Restore it from a backup, or delete it"
    with pytest.raises(StoreError, match=empty), in_process(models_dir, state):
        pass
    assert (state / SQLITE_FILENAME).stat().st_size == 0  # left as it was, for the operator to look at


def test_a_foreign_file_or_database_is_refused_at_start(models_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "text"
    text.mkdir()
    (text / SQLITE_FILENAME).write_text("not a database\n")
    with pytest.raises(StoreError, match="is not an SQLite database"):
        open_store(text)
    other = tmp_path / "other"
    other.mkdir()
    with sqlite3.connect(other / SQLITE_FILENAME) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    foreign = r"SQLite database of something else \(tables invoices\), not a ceal pool"
    with pytest.raises(StoreError, match=foreign), in_process(models_dir, other):
        pass
    tables = sqlite3.connect(other / SQLITE_FILENAME).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("invoices",)]  # nothing was created in it


def test_disk_full_says_disk_full_and_what_to_free(tmp_path: Path) -> None:
    store = open_store(tmp_path / "state")
    try:
        conn = store._db.get()  # type: ignore[attr-defined]  # this thread's connection: the store uses it
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # the file cannot grow: SQLite reports SQLITE_FULL
        big = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)  # does not compress
        with pytest.raises(StoreError) as info:
            store.register_images("default", [NewImage(big)])
        message = str(info.value)
        assert message.startswith("disk full") and "free space on the filesystem holding" in message
        assert "ceal pool database" not in message
        assert store.counts("default", "", 0).images == 0  # nothing half-stored
    finally:
        store.close()
