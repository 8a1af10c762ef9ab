"""Store failures land on the status codes they deserve: a damaged file is DATA_LOSS (never retried), a lost
write race ABORTED, a locked or closed store UNAVAILABLE (retried), a reused idempotency key ALREADY_EXISTS."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from ceal.service.servicers.status import code_for, status_for
from ceal.service.store import SQLitePoolStore
from ceal.service.store.codec import decode_array
from ceal.service.store.errors import StoreBusy, StoreDamaged, StoreError, WriteConflict
from ceal.service.store.sqlite.connections import ThreadConnections


def test_a_truncated_database_is_data_loss_and_another_file_internal(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    with pytest.raises(StoreDamaged) as raised:
        SQLitePoolStore(empty)
    assert code_for(raised.value)[0] == grpc.StatusCode.DATA_LOSS
    assert status_for(raised.value).code == grpc.StatusCode.DATA_LOSS.value[0]
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(StoreError) as other:
        SQLitePoolStore(junk)
    assert code_for(other.value)[0] == grpc.StatusCode.INTERNAL  # a wrong file, not a damaged pool: not retried


def test_a_damaged_sqlite_page_is_data_loss(tmp_path: Path) -> None:
    connections = ThreadConnections(tmp_path / "x.sqlite3", busy_timeout_s=0.1)
    error = sqlite3.DatabaseError("database disk image is malformed")
    error.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
    damaged = connections.translate(error)
    assert isinstance(damaged, StoreDamaged) and code_for(damaged)[0] == grpc.StatusCode.DATA_LOSS


def test_a_damaged_blob_is_data_loss() -> None:
    with pytest.raises(StoreDamaged) as raised:
        decode_array(b"not zlib at all")
    assert code_for(raised.value)[0] == grpc.StatusCode.DATA_LOSS


def test_sqlite_errors_are_translated_by_kind(tmp_path: Path) -> None:
    connections = ThreadConnections(tmp_path / "x.sqlite3", busy_timeout_s=0.1)
    conflict = connections.translate(sqlite3.IntegrityError("UNIQUE constraint failed: labels.idempotency_key"))
    assert isinstance(conflict, WriteConflict) and code_for(conflict)[0] == grpc.StatusCode.ABORTED
    locked = connections.translate(sqlite3.OperationalError("database is locked"))
    assert isinstance(locked, StoreBusy) and code_for(locked)[0] == grpc.StatusCode.UNAVAILABLE
    other = connections.translate(sqlite3.OperationalError("no such table: images"))
    assert type(other) is StoreError and code_for(other)[0] == grpc.StatusCode.INTERNAL  # not retried
    connections.close()
    with pytest.raises(StoreBusy, match="closed") as raised:
        connections.get()
    assert code_for(raised.value)[0] == grpc.StatusCode.UNAVAILABLE
