"""`PoolStore` on PostgreSQL: the store several service replicas share.

The method bodies are `SQLPoolStore`'s (`sql.py`); this module opens the database and supplies Postgres's
hooks. Connections and error translation live in `connections.py` (a small psycopg pool, every connection with
synchronous_commit on), the SQL in `queries.py` (the shared DML in psycopg's style plus the locking picks),
the schema runner in `migrate.py` (under an advisory lock). Where Postgres needs explicit row locks:

- leases and scoring claims are picked with `SELECT ... FOR NO KEY UPDATE SKIP LOCKED` and written in the same
  transaction, so concurrent replicas never hand out the same image (see `queries.pick_free`);
- a label write locks its image's row first, so label versions of one image are assigned one at a time;
- group leases of one pool queue on an advisory lock, then wait for (not skip) each group's rows.

Times come from the injected clock, not the database's `now()`: replicas' clocks must agree (NTP) to within
the lease lengths in use.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import psycopg

from ceal.service.store.base import GroupLevel
from ceal.service.store.postgres import queries
from ceal.service.store.postgres.connections import PostgresConnections
from ceal.service.store.postgres.migrate import migrate
from ceal.service.store.sql import GroupPicker, SQLPoolStore

__all__ = ["PostgresPoolStore"]

_log = logging.getLogger(__name__)


class PostgresPoolStore(SQLPoolStore):
    """Pool store in the Postgres database at `url` (postgresql://user:password@host:port/database), migrated
    to the latest schema on open; the database must exist.

    clock: seconds since the epoch, injected so tests can move time. max_connections: the pool's size (one
    per concurrent store call; more wait up to timeout_s for a free one).
    """

    _q: ClassVar[ModuleType] = queries

    def __init__(
        self,
        url: str,
        clock: Callable[[], float] = time.time,
        *,
        max_connections: int = 10,
        timeout_s: float = 30.0,
    ) -> None:
        self._clock = clock
        self._db = PostgresConnections(url, max_size=max_connections, timeout_s=timeout_s)
        conn = self._db.connect()
        try:
            version = migrate(conn, now=self._clock())
        except psycopg.Error as exc:
            raise self._db.translate(exc) from exc
        finally:
            conn.close()
        self._db.open()
        _log.info("pool store opened: Postgres at %s (schema version %d)", self._db.where, version)

    # --- hooks -----------------------------------------------------------------------------------------
    def _transaction(self, *, write: bool) -> contextlib.AbstractContextManager[psycopg.Connection]:
        return self._db.transaction()  # READ COMMITTED either way: the picks lock the rows they take

    def _rows_in(self, conn: Any, sql: str, head: tuple[Any, ...], ids: Sequence[str]) -> Iterator[Any]:
        if not ids:
            return iter(())
        return iter(conn.execute(sql, (*head, list(ids))))  # `= ANY(%s)`: one array, any length

    def _execute_many(self, conn: Any, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _lock_image(self, conn: Any, pool: str, image_id: str) -> None:
        conn.execute(queries.LOCK_IMAGE, (pool, image_id))  # the image's label writers queue here

    def _pick_claims(self, conn: Any, params: Mapping[str, Any], limit: int) -> list[str]:
        return queries.pick_free(conn, queries.PICK_CLAIMS, queries.CLAIMS_TAKEN, params, limit)

    def _pick_leases(self, conn: Any, pool: str, ranked: list[str], now: float, annotator: str, k: int) -> list[str]:
        params = {"pool": pool, "ranked": ranked, "now": now, "annotator": annotator}
        picked = set(queries.pick_free(conn, queries.PICK_LEASES, queries.LEASES_TAKEN, params, k) if k else [])
        return [image_id for image_id in ranked if image_id in picked]  # rounds may interleave ranks

    def _group_picker(self, conn: Any, pool: str, level: GroupLevel, now: float, annotator: str) -> GroupPicker:
        lock_members = queries.LOCK_SERIES if level == "series" else queries.LOCK_STUDY
        # Group leases of one pool queue on this lock, so two of them never wait on each other's rows.
        conn.execute(queries.GROUP_LEASE_LOCK, (queries.GROUP_LEASE_LOCK_KEY, pool))

        def free_members(key: str) -> list[str] | None:
            # Wait for (not skip) the group's rows: a one-at-a-time lease or a label on them commits first,
            # and the next statement's fresh snapshot sees it.
            members = [str(row[0]) for row in conn.execute(lock_members, (pool, key))]
            if not members:
                return None
            state = conn.execute(
                queries.GROUP_TAKEN, {"pool": pool, "ids": members, "now": now, "annotator": annotator}
            )
            human: set[str] = set()
            others = False
            for image_id, labelled, leased in state:
                others = others or bool(leased)
                if labelled:
                    human.add(str(image_id))
            free = [image_id for image_id in members if image_id not in human]
            return free if free and not others else None

        return free_members

    # --- lifetime --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection. Call it after the server has stopped serving requests."""
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresPoolStore({self._db.where!r})"
