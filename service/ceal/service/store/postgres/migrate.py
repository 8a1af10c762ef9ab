"""Applying `migrations.py` to a Postgres database, in one transaction that first takes a transaction-level
advisory lock, so replicas starting at once queue on it: the first migrates, the others then find the schema
current. DDL is transactional in Postgres, so a failed step leaves the database as it was.

Databases made before the two backends shared one history numbered their steps differently (their step 1
made what steps 1-3 make now, their step 2 is step 4); `renumber_legacy` rewrites such a history to the shared
numbers, in the same transaction, before the missing steps run. The tables are the same either way.
"""

from __future__ import annotations

import zlib

import psycopg

from ceal.service.store.errors import StoreError
from ceal.service.store.migrations import LATEST_VERSION, MIGRATIONS, apply_missing, version_table

__all__ = ["LEGACY_STEPS", "MIGRATION_LOCK", "current_version", "migrate", "renumber_legacy"]

# pg_advisory_xact_lock key: a fixed 32-bit number, so every ceal replica takes the same lock.
MIGRATION_LOCK = zlib.crc32(b"ceal.pool-store.migrate")

# The Postgres-only history's steps (version, description) -> the shared steps that make the same tables.
LEGACY_STEPS: dict[tuple[int, str], tuple[int, ...]] = {
    (1, "images, scores and their history, labels, leases, scoring claims"): (1, 2, 3),
    (2, "image names (file name or UID) beside the id; studies found by key for study-level leases"): (4,),
}


def current_version(conn: psycopg.Connection) -> int:
    """The highest applied step; 0 for an empty database."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone() or (0,)
    return int(version)


def renumber_legacy(conn: psycopg.Connection) -> bool:
    """Rewrite a Postgres-only step history to the shared numbers (keeping each step's applied_at); True when
    it did. A history whose step 1 is not the legacy one is left alone."""
    applied = conn.execute("SELECT version, description, applied_at FROM schema_version ORDER BY version").fetchall()
    if not applied or (applied[0][0], applied[0][1]) not in LEGACY_STEPS:
        return False
    unknown = [version for version, description, _ in applied if (version, description) not in LEGACY_STEPS]
    if unknown:
        raise StoreError(
            f"the pool database's schema history mixes old-style steps with unknown ones ({unknown}): "
            "upgrade ceal, or point it at another database"
        )
    descriptions = {step.version: step.description for step in MIGRATIONS}
    renumbered = [
        (shared, descriptions[shared], applied_at)
        for version, description, applied_at in applied
        for shared in LEGACY_STEPS[(version, description)]
    ]
    conn.execute("DELETE FROM schema_version")
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, %s)", renumbered
        )
    return True


def migrate(conn: psycopg.Connection, now: float, target: int = LATEST_VERSION) -> int:
    """Apply the missing steps up to `target` in one transaction under the migration lock; returns the version
    reached. conn must be in autocommit mode. Raises StoreError when the database was written by a newer ceal."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(version_table("postgres"))
        renumber_legacy(conn)
        return apply_missing(conn.execute, current_version(conn), now=now, target=target, dialect="postgres")
