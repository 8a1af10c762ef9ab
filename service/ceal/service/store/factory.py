"""`open_store`: the store a `--state` setting names."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ceal.service.store.base import PoolStore
from ceal.service.store.errors import InvalidInput, UnsupportedBackend
from ceal.service.store.sqlite import SQLitePoolStore

__all__ = ["SQLITE_FILENAME", "open_store"]

SQLITE_FILENAME = "pool.sqlite3"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(state: str | Path, clock: Callable[[], float] = time.time) -> PoolStore:
    """A directory -> SQLite at `state/pool.sqlite3` (the folder is created); a postgresql:// URL -> Postgres.

    The Postgres database must exist (it is migrated to the latest schema on open). Raises UnsupportedBackend
    for a postgresql:// URL when psycopg is not installed, StoreError when the server cannot be reached,
    InvalidInput for a file path.
    """
    text = str(state)
    if text.startswith(_POSTGRES_SCHEMES):
        try:  # psycopg is an optional dependency (the `service` extra): import it only when asked for
            from ceal.service.store.postgres import PostgresPoolStore
        except ImportError as exc:
            raise UnsupportedBackend(
                "a postgresql:// state needs psycopg: pip install 'psycopg[binary]' psycopg_pool "
                "(or ceal[service]), or use a state directory (SQLite)"
            ) from exc
        return PostgresPoolStore(text, clock=clock)
    if "://" in text:
        raise InvalidInput(f"state {text.split('://', 1)[0]}://... is not known: use a directory or postgresql://")
    folder = Path(state)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"state {folder} is a file: give a directory, the store lives in {SQLITE_FILENAME} in it")
    folder.mkdir(parents=True, exist_ok=True)
    return SQLitePoolStore(folder / SQLITE_FILENAME, clock=clock)
