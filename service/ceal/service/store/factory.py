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

    Raises UnsupportedBackend for Postgres until its backend is installed, InvalidInput for a file path.
    """
    text = str(state)
    if text.startswith(_POSTGRES_SCHEMES):
        raise UnsupportedBackend(
            "Postgres support is not installed yet: use a state directory (SQLite) for now"
        )
    if "://" in text:
        raise InvalidInput(
            f"state {text.split('://', 1)[0]}://... is not known: use a directory or postgresql://"
        )
    folder = Path(state)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(
            f"state {folder} is a file: give a directory, the store lives in {SQLITE_FILENAME} in it"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return SQLitePoolStore(folder / SQLITE_FILENAME, clock=clock)
