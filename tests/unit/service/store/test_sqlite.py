"""SQLite-only behaviour: pragmas, processes sharing one file, crash durability, connections, open_store."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ceal.service.store import (
    InvalidInput,
    NewImage,
    SQLitePoolStore,
    StoreError,
    open_store,
)
from ceal.service.store import sql as sql_module

Pixels = Callable[..., np.ndarray]
WORKER = Path(__file__).with_name("store_worker.py")


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_connection_settings(tmp_path: Path) -> None:
    with SQLitePoolStore(tmp_path / "pool.sqlite3") as store:
        conn = store._db.get()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (30000,)


def test_label_survives_sigkill_right_after_ack(tmp_path: Path, pixels: Pixels) -> None:
    db = tmp_path / "pool.sqlite3"
    with SQLitePoolStore(db) as store:
        ((image_id, _),) = store.register_images("p", [NewImage(pixels(1))])
    worker = _worker("label", str(db), image_id)
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        _, err = worker.communicate()
    assert line.startswith("ACK "), err
    with SQLitePoolStore(db) as reopened:
        (label,) = reopened.label_history("p", image_id)
    assert label.label_id == line.split()[1]
    assert (label.annotator, label.version, label.seconds_spent) == ("worker", 1, 2.0)
    np.testing.assert_array_equal(label.mask, np.ones((6, 5), np.uint8))


def test_two_processes_never_lease_the_same_image(tmp_path: Path, pixels: Pixels) -> None:
    db, go = tmp_path / "pool.sqlite3", tmp_path / "go"
    with SQLitePoolStore(db) as store:
        ids = [image_id for image_id, _ in store.register_images("p", [NewImage(pixels(i)) for i in range(120)])]
    calls, k = 30, 2
    workers = [_worker("lease", str(db), str(go), name, str(calls), str(k)) for name in ("a", "b")]
    for worker in workers:  # start both at once: each has opened the store and waits for `go`
        assert worker.stdout is not None
        assert worker.stdout.readline() == "READY\n"
    go.touch()
    results = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
    taken_a, taken_b = (json.loads(out) for out, _ in results)
    assert len(taken_a) + len(taken_b) == 2 * calls * k == len(ids)
    assert set(taken_a).isdisjoint(taken_b)
    assert set(taken_a) | set(taken_b) == set(ids)


def test_a_held_write_lock_gives_a_store_error_not_a_hang(tmp_path: Path, pixels: Pixels) -> None:
    db = tmp_path / "pool.sqlite3"
    with SQLitePoolStore(db, busy_timeout_s=0.05) as store:
        ((image_id, _),) = store.register_images("p", [NewImage(pixels(1))])
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="stayed locked"):
                store.acquire_leases("p", [image_id], "alice", 1, 60)
            assert store.get_image("p", image_id).image_id == image_id  # WAL: reads go on
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert len(store.acquire_leases("p", [image_id], "alice", 1, 60)) == 1


def test_thread_connections_close_when_threads_end(tmp_path: Path) -> None:
    with SQLitePoolStore(tmp_path / "pool.sqlite3") as store:
        threads = [threading.Thread(target=store.pools) for _ in range(4)]
        for thread in threads:
            thread.start()
            thread.join()
        gc.collect()
        assert len(store._db._open) == 1  # the main thread's
    with pytest.raises(StoreError, match="closed"):
        store.pools()


def test_latest_labels_streams_in_chunks(tmp_path: Path, pixels: Pixels, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_module, "CHUNK", 2)
    with SQLitePoolStore(tmp_path / "pool.sqlite3") as store:
        ids = [image_id for image_id, _ in store.register_images("p", [NewImage(pixels(i)) for i in range(5)])]
        for image_id in ids:
            store.submit_label("p", image_id, np.ones((6, 5), bool), annotator="a", source="human", seconds_spent=1)
        labels = store.latest_labels("p", {"human"})
        assert [label.image_id for label in labels] == sorted(ids)


def test_paths_that_cannot_hold_a_store(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="file path"):
        SQLitePoolStore(":memory:")
    with pytest.raises(InvalidInput, match="does not exist"):
        SQLitePoolStore(tmp_path / "missing" / "pool.sqlite3")
    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(StoreError, match="ceal pool database"):
        SQLitePoolStore(tmp_path / "junk.sqlite3")


def test_open_store(tmp_path: Path, pixels: Pixels) -> None:
    state = tmp_path / "state" / "nested"
    with open_store(str(state)) as store:
        assert isinstance(store, SQLitePoolStore)
        store.register_images("p", [NewImage(pixels(1))])
    assert (state / "pool.sqlite3").is_file()
    with open_store(state) as again:
        assert again.pools() == ["p"]
    # postgresql:// URLs: test_postgres.py
    with pytest.raises(InvalidInput, match="s3://"):
        open_store("s3://bucket/state")
    with pytest.raises(InvalidInput, match="is a file"):
        open_store(str(state / "pool.sqlite3"))
