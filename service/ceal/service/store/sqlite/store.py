"""`PoolStore` on one SQLite file in WAL mode: the embedded default for a single service replica.

The method bodies are `SQLPoolStore`'s (`sql.py`); this module opens the file and supplies SQLite's hooks.
Thread-safety and transactions live in `connections.py` (one connection per thread; every write one BEGIN
IMMEDIATE transaction, so writers run one at a time and the claim and lease picks are plain reads); the SQL
is `queries.py` as written. Durability: synchronous=FULL, so a label is on disk when `submit_label` returns.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from ceal.service.store import queries, sql
from ceal.service.store.base import GroupLevel
from ceal.service.store.errors import InvalidInput, StoreDamaged, StoreError
from ceal.service.store.sql import GroupPicker, SQLPoolStore
from ceal.service.store.sqlite.connections import ThreadConnections
from ceal.service.store.sqlite.migrate import migrate

__all__ = ["SQLitePoolStore"]

_log = logging.getLogger(__name__)


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_state_file(path: Path) -> None:
    """Refuse, before SQLite opens it, a state file that exists but is empty or not an SQLite database:
    SQLite would start an empty zero-length file silently as a new pool, hiding the pool that was lost."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return  # a new pool
    if size == 0:  # truncated: DATA_LOSS, never retried
        raise StoreDamaged(
            f"the pool database {path} is empty (0 bytes): it is not a pool store, and starting would hide "
            "whatever was lost. Restore it from a backup, or delete it to start a new, empty pool"
        )
    with open(path, "rb") as fh:
        header = fh.read(len(_SQLITE_HEADER))
    if header != _SQLITE_HEADER:
        raise StoreError(
            f"{path} is not an SQLite database, so not a ceal pool database (it is some other file): point "
            "--state at the folder of a ceal pool, or move the file away to start a new pool"
        )


def check_ceal_database(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite database written by something else (tables, but no ceal schema_version)."""
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if tables and "schema_version" not in tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            f"{path} is an SQLite database of something else (tables {shown}), not a ceal pool: point --state "
            "at the folder of a ceal pool, or move the file away to start a new pool"
        )


class SQLitePoolStore(SQLPoolStore):
    """Pool store in the SQLite file at `path` (created, and migrated to the latest schema, on open).

    clock: seconds since the epoch, injected so tests can move time. busy_timeout_s: how long a write waits
    for another writer before StoreError.
    """

    _q: ClassVar[ModuleType] = queries

    def __init__(
        self, path: Path | str, clock: Callable[[], float] = time.time, *, busy_timeout_s: float = 30.0
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise InvalidInput("SQLitePoolStore needs a file path: every thread opens its own connection to it")
        self._path = Path(path)
        if not self._path.parent.is_dir():
            raise InvalidInput(f"folder {self._path.parent} does not exist: create it, or use open_store(dir)")
        self._clock = clock
        check_state_file(self._path)
        self._db = ThreadConnections(self._path, busy_timeout_s)
        try:
            conn = self._db.get()
            check_ceal_database(conn, self._path)
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self._path} cannot use write-ahead logging (journal mode stays {mode}): "
                    "put the state directory on a local disk"
                )
            version = migrate(conn, now=self._clock())
        except sqlite3.Error as exc:
            self._db.close()
            raise self._db.translate(exc) from exc
        except StoreError:
            self._db.close()
            raise
        _log.info("pool store opened: %s (schema version %d)", self._path, version)

    # --- hooks -----------------------------------------------------------------------------------------
    def _transaction(self, *, write: bool) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction(write=write)

    def _rows_in(self, conn: Any, statement: str, head: tuple[Any, ...], ids: Sequence[str]) -> Iterator[Any]:
        size = sql.CHUNK  # ids per list: well under SQLite's variable limit
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            yield from conn.execute(statement.format(marks=queries.marks(len(chunk))), (*head, *chunk))

    def _execute_many(self, conn: Any, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        conn.executemany(sql, rows)

    def _pick_claims(self, conn: Any, params: Mapping[str, Any], limit: int) -> list[str]:
        return [str(row[0]) for row in conn.execute(queries.CLAIMABLE, {**params, "limit": limit})]

    def _pick_leases(self, conn: Any, pool: str, ranked: list[str], now: float, annotator: str, k: int) -> list[str]:
        blocked = {str(row[0]) for row in conn.execute(queries.HUMAN_LABELLED_IDS, (pool,))}
        blocked.update(str(row[0]) for row in conn.execute(queries.LEASED_TO_OTHERS, (pool, now, annotator)))
        return [image_id for image_id in ranked if image_id not in blocked][:k]

    def _group_picker(self, conn: Any, pool: str, level: GroupLevel, now: float, annotator: str) -> GroupPicker:
        members_sql = queries.SERIES_MEMBERS if level == "series" else queries.STUDY_MEMBERS
        human = {str(row[0]) for row in conn.execute(queries.HUMAN_LABELLED_IDS, (pool,))}
        others = {str(row[0]) for row in conn.execute(queries.LEASED_TO_OTHERS, (pool, now, annotator))}

        def free_members(key: str) -> list[str] | None:
            members = [str(row[0]) for row in conn.execute(members_sql, (pool, key))]
            free = [image_id for image_id in members if image_id not in human]
            return free if free and not others.intersection(members) else None

        return free_members

    # --- lifetime --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every thread's connection. Call it after the server has stopped serving requests."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLitePoolStore({str(self._path)!r})"
