"""Per-thread SQLite connections to one file, and the transaction every store method runs in.

One connection per thread, opened on first use and closed when the thread ends (or on `close`): WAL lets
readers run beside the one writer, and sqlite3 drops the GIL inside SQLite, so a thread streaming pixels never
waits for another thread's label commit. Writes are BEGIN IMMEDIATE transactions, so writers queue on SQLite's
file lock (up to busy_timeout), the same lock that keeps two processes apart: threads and processes follow one
path. sqlite3 errors become StoreError subclasses here, and only here.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from ceal.service.store.errors import StoreBusy, StoreDamaged, StoreError, WriteConflict

__all__ = ["ThreadConnections"]


class _Holder:
    """One thread's connection. The thread's thread-local dict drops it when the thread ends, and the
    finalizer then closes the connection."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        weakref.finalize(self, conn.close)


class ThreadConnections:
    """Connections to the SQLite file at `path` with foreign keys on, synchronous=FULL (a commit is on disk
    when it returns, even across a power cut) and a busy timeout of `busy_timeout_s` seconds."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._open: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def get(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        if self._closed:
            raise StoreBusy("this pool store is closed: open a new one")
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None:
            try:
                holder = _Holder(self._connect())
            except sqlite3.Error as exc:
                raise self.translate(exc) from exc
            with self._lock:
                self._open.add(holder)
            self._local.holder = holder
        return holder.conn

    def translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        code = getattr(exc, "sqlite_errorcode", None)
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
            return StoreBusy(
                f"the pool database stayed locked for more than {self.busy_timeout_s:g} s by another writer: "
                "retry, or give the store a longer busy_timeout_s"
            )
        if code == sqlite3.SQLITE_FULL or "disk is full" in text:
            return StoreError(
                f"disk full: the pool database {self.path} cannot grow (nothing was stored by this call); free "
                f"space on the filesystem holding {self.path.parent} (old exports, logs, other files), or move "
                "the state directory to a larger disk, then retry"
            )
        if isinstance(exc, sqlite3.IntegrityError):
            return WriteConflict(f"the write contradicts stored data ({text}): re-read the pool and retry")
        if code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):  # retrying won't help
            return StoreDamaged(f"pool database damaged ({text}): check that {self.path} is a ceal pool database")
        return StoreError(f"pool database error ({text}): check that {self.path} is a ceal pool database")

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE for writes (the write lock is taken up front, so the transaction never has to
        upgrade a read lock, which fails at once instead of waiting); a deferred BEGIN for reads, which gives
        one consistent snapshot. Rolls back on any exception."""
        conn = self.get()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # keep the first error, not a failed rollback's
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self.translate(exc) from exc
            raise

    def close(self) -> None:
        """Close every thread's connection; later `get` calls raise StoreError."""
        with self._lock:
            self._closed = True
            holders = list(self._open)
        for holder in holders:
            holder.conn.close()
