"""Applying `migrations.py` to a SQLite file: every missing step in one BEGIN IMMEDIATE transaction, so two
processes opening an old file at once migrate it once (the second waits for the write lock, then finds it
current) and a failed step leaves the file as it was."""

from __future__ import annotations

import sqlite3

from ceal.service.store.migrations import LATEST_VERSION, apply_missing, version_table

__all__ = ["current_version", "migrate"]


def current_version(conn: sqlite3.Connection) -> int:
    """The highest applied step; 0 for a new file."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if exists is None:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, now: float, target: int = LATEST_VERSION) -> int:
    """Apply the missing steps up to `target` in one transaction; returns the version reached.

    conn must be in autocommit mode (isolation_level=None). Raises StoreError when the file was written by a
    newer ceal (its version is above LATEST_VERSION).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(version_table("sqlite"))
        version = apply_missing(conn.execute, current_version(conn), now=now, target=target, dialect="sqlite")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return version
