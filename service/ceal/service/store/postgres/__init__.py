"""The Postgres backend: `PostgresPoolStore` (a psycopg pool; SKIP LOCKED picks). Imports psycopg, an optional
dependency: `open_store` imports this package only for a postgresql:// state."""

from ceal.service.store.postgres.store import PostgresPoolStore

__all__ = ["PostgresPoolStore"]
