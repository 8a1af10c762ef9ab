"""A small psycopg connection pool to one Postgres database, and the transaction every store method runs in.

Every connection is in autocommit mode with `synchronous_commit = on` (set on connect, whatever the server's
default), so a transaction's COMMIT returns only once its WAL is flushed: a label acknowledged is on disk.
Transactions are READ COMMITTED; the store takes the row locks it needs explicitly. psycopg and psycopg_pool
errors become StoreError subclasses here, and only here. Messages name the server as host:port/database,
never the password or any row's values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from ceal.service.store.errors import StoreBusy, StoreError, WriteConflict

__all__ = ["PostgresConnections", "describe_url"]

# SQLSTATE classes that mean "another transaction was in the way; trying again is the fix".
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.LockNotAvailable)


def describe_url(url: str) -> str:
    """host:port/database of a postgresql:// URL, for messages (never the user's password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable postgresql:// URL"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("SET synchronous_commit = on")
    conn.execute("SET application_name = 'ceal-pool-store'")


class PostgresConnections:
    """Up to `max_size` connections to `url`; a caller waits up to `timeout_s` for a free one."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, timeout_s: float = 30.0) -> None:
        self.url = url
        self.where = describe_url(url)
        self.timeout_s = timeout_s
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection] = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            kwargs={"autocommit": True},
            configure=_configure,
            check=psycopg_pool.ConnectionPool.check_connection,  # a restarted server costs no failed call
            name="ceal-pool-store",
        )

    def connect(self) -> psycopg.Connection:
        """A connection of its own (autocommit), outside the pool: for migrations before the pool opens."""
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.timeout_s)))
            _configure(conn)
        except psycopg.Error as exc:
            raise self.translate(exc) from exc
        return conn

    def open(self) -> None:
        try:
            self._pool.open(wait=True, timeout=self.timeout_s)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise StoreBusy(
                f"no connection to Postgres at {self.where} within {self.timeout_s:g} s: check the server runs "
                "and the URL (user, password, database)"
            ) from exc

    def translate(self, exc: Exception) -> StoreError:
        if isinstance(exc, psycopg_pool.PoolClosed):
            return StoreBusy("this pool store is closed: open a new one")
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return StoreBusy(
                f"no free database connection within {self.timeout_s:g} s: the Postgres pool store is "
                "overloaded; retry, or give it more connections"
            )
        if isinstance(exc, psycopg.errors.IntegrityError):
            constraint = getattr(exc.diag, "constraint_name", None) or "a constraint"
            return WriteConflict(
                f"the write contradicts stored data ({constraint} in {self.where}): re-read the pool and retry"
            )
        if isinstance(exc, psycopg.errors.DiskFull):
            return StoreError(
                f"disk full: the Postgres server at {self.where} cannot write (nothing was stored by this call); "
                "free space on its data volume (old WAL archives, logs, other databases) or grow the volume, "
                "then retry"
            )
        if isinstance(exc, _RETRYABLE):
            return WriteConflict(f"the write met a concurrent one ({type(exc).__name__}): retry")
        if isinstance(exc, psycopg.OperationalError):
            return StoreBusy(
                f"cannot use Postgres at {self.where} ({type(exc).__name__}): check the server runs and the "
                "URL (user, password, database)"
            )
        sqlstate = getattr(exc, "sqlstate", None) or "no SQLSTATE"
        return StoreError(
            f"pool database error ({type(exc).__name__}, {sqlstate}): check that {self.where} holds a ceal pool store"
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One READ COMMITTED transaction on a pooled connection; rolled back on any exception."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            raise self.translate(exc) from exc

    def close(self) -> None:
        """Close every connection; later transactions raise StoreError. Closing twice is allowed."""
        self._pool.close()
