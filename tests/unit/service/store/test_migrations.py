from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ceal.service.store import SQLitePoolStore, StoreError, encode_array
from ceal.service.store.migrations import LATEST_VERSION, MIGRATIONS
from ceal.service.store.sqlite.migrate import current_version, migrate


def _versions(db: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_steps_are_numbered_one_to_latest() -> None:
    assert [step.version for step in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    assert LATEST_VERSION >= 2  # so that "an older file" exists to migrate


def test_new_file_is_at_latest_and_reopening_applies_nothing(tmp_path: Path) -> None:
    db = tmp_path / "pool.sqlite3"
    SQLitePoolStore(db).close()
    SQLitePoolStore(db).close()
    assert _versions(db) == list(range(1, LATEST_VERSION + 1))


def test_opening_a_version_1_file_migrates_it_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "pool.sqlite3"
    pixels = np.arange(30, dtype=np.uint16).reshape(6, 5)
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, now=1.0, target=1) == 1
    conn.execute(
        "INSERT INTO images VALUES ('p', 'a' || hex(zeroblob(15)), 6, 5, 1, '<u2', 's', 's', 0, "
        "NULL, NULL, NULL, NULL, ?, 5.0)",
        (encode_array(pixels),),
    )
    (image_id,) = conn.execute("SELECT image_id FROM images").fetchone()
    conn.execute("INSERT INTO scores VALUES ('p', ?, 'unet', 1, 0.5, 0.1, 0.01, 0.9, 10.0, 1, 0.2, 6.0)", (image_id,))
    conn.close()
    assert _versions(db) == [1]

    with SQLitePoolStore(db) as store:
        assert _versions(db) == list(range(1, LATEST_VERSION + 1))
        np.testing.assert_array_equal(store.load_pixels("p", image_id), pixels)
        (row,) = store.score_rows("p", "unet", 1)
        assert (row.entropy, row.descriptor, row.scored_at) == (0.5, None, 6.0)
        # Version 2 features work on the migrated file, and the old score was copied into the history.
        store.put_scores("p", [dataclasses.replace(row, descriptor=np.ones(4, np.float32))])
        conn = store._db.get()
        assert conn.execute("SELECT COUNT(*) FROM score_history").fetchone() == (2,)
        (again,) = store.score_rows("p", "unet", 1)
        assert again.descriptor is not None


def test_a_failing_step_leaves_the_file_untouched(tmp_path: Path) -> None:
    db = tmp_path / "pool.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, now=1.0, target=1)
    conn.execute("CREATE TABLE score_history (x INTEGER)")  # makes step 2's CREATE TABLE fail
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, now=2.0)
    assert current_version(conn) == 1
    assert "descriptor" not in [col[1] for col in conn.execute("PRAGMA table_info(scores)")]
    conn.close()


def test_a_file_from_a_newer_ceal_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "pool.sqlite3"
    SQLitePoolStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST_VERSION + 1,))
    conn.close()
    with pytest.raises(StoreError, match="upgrade ceal"):
        SQLitePoolStore(db)
