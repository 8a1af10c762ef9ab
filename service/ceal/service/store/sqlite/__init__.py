"""The SQLite backend: `SQLitePoolStore` (one WAL file, per-thread connections, BEGIN IMMEDIATE writes)."""

from ceal.service.store.sqlite.store import SQLitePoolStore

__all__ = ["SQLitePoolStore"]
