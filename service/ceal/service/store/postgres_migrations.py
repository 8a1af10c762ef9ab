"""Postgres schema, as an ordered list of migration steps applied on open.

The same tables as the SQLite schema (`migrations.py`: this step 1 matches its steps 1-3, step 2 its step 4) in
Postgres types: DOUBLE PRECISION for times and scores (SQLite's REAL is 8 bytes too), BYTEA for the
zlib-compressed arrays (stored EXTERNAL: already compressed, Postgres should not try again). `migrate` runs in
one transaction that first takes a transaction-level advisory lock, so replicas starting at once queue on
it: the first migrates, the others then find the schema current. DDL is transactional in Postgres, so a failed
step leaves the database as it was. Steps are append-only.
"""

from __future__ import annotations

import zlib

import psycopg

from ceal.service.store.errors import StoreError
from ceal.service.store.migrations import Migration

__all__ = ["LATEST_VERSION", "MIGRATIONS", "MIGRATION_LOCK", "current_version", "migrate"]

# pg_advisory_xact_lock key: a fixed 32-bit number, so every ceal replica takes the same lock.
MIGRATION_LOCK = zlib.crc32(b"ceal.pool-store.migrate")

_SCORE_NUMBERS = """
    entropy DOUBLE PRECISION NOT NULL,
    mutual_information DOUBLE PRECISION NOT NULL,
    variance DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    boundary_length DOUBLE PRECISION NOT NULL,
    components INTEGER NOT NULL,
    foreground_fraction DOUBLE PRECISION NOT NULL,
"""
_IMAGE_FK = "FOREIGN KEY (pool, image_id) REFERENCES images (pool, image_id) ON DELETE CASCADE"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "images, scores and their history, labels, leases, scoring claims",
        (
            """CREATE TABLE images (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                height INTEGER NOT NULL,
                width INTEGER NOT NULL,
                channels INTEGER NOT NULL,
                dtype TEXT NOT NULL,
                series_key TEXT NOT NULL,
                study_key TEXT NOT NULL,
                slice_index INTEGER NOT NULL,
                dicom_study_uid TEXT,
                dicom_series_uid TEXT,
                dicom_sop_uid TEXT,
                dicom_frame INTEGER,
                pixels BYTEA NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (pool, image_id)
            )""",
            "ALTER TABLE images ALTER COLUMN pixels SET STORAGE EXTERNAL",
            "CREATE INDEX images_by_series ON images (pool, series_key)",
            # needs_scoring / claim_scoring walk a pool oldest first and stop at the limit
            "CREATE INDEX images_in_order ON images (pool, created_at, image_id)",
            f"""CREATE TABLE scores (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                {_SCORE_NUMBERS}
                descriptor BYTEA,
                scored_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (pool, image_id, model_name),
                {_IMAGE_FK}
            )""",
            f"""CREATE TABLE score_history (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                {_SCORE_NUMBERS}
                scored_at DOUBLE PRECISION NOT NULL,
                {_IMAGE_FK}
            )""",
            "CREATE INDEX score_history_by_image ON score_history (pool, image_id, model_name)",
            f"""CREATE TABLE labels (
                label_id TEXT PRIMARY KEY,
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                source TEXT NOT NULL CHECK (source IN ('human', 'pseudo')),
                annotator TEXT NOT NULL,
                mask BYTEA NOT NULL,
                mask_digest TEXT NOT NULL,
                seconds_spent DOUBLE PRECISION NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                model_version INTEGER,
                idempotency_key TEXT,
                UNIQUE (pool, image_id, version),
                UNIQUE (pool, idempotency_key),
                {_IMAGE_FK}
            )""",
            "ALTER TABLE labels ALTER COLUMN mask SET STORAGE EXTERNAL",
            "CREATE INDEX labels_by_source ON labels (pool, source, image_id, version)",
            f"""CREATE TABLE leases (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                annotator TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (pool, image_id),
                {_IMAGE_FK}
            )""",
            f"""CREATE TABLE scoring_claims (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                worker TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (pool, image_id, model_name, model_version),
                {_IMAGE_FK}
            )""",
            "CREATE INDEX scoring_claims_by_expiry ON scoring_claims (pool, expires_at)",
        ),
    ),
    Migration(
        2,
        "image names (file name or UID) beside the id; studies found by key for study-level leases",
        (
            "ALTER TABLE images ADD COLUMN name TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX images_by_name ON images (pool, name)",
            "CREATE INDEX images_by_study ON images (pool, study_key)",
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version

_CREATE_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""


def current_version(conn: psycopg.Connection) -> int:
    """The highest applied step; 0 for an empty database."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone() or (0,)
    return int(version)


def migrate(conn: psycopg.Connection, now: float, target: int = LATEST_VERSION) -> int:
    """Apply the missing steps up to `target` in one transaction under the migration lock; returns the version
    reached. conn must be in autocommit mode. Raises StoreError when the database was written by a newer ceal."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(_CREATE_VERSION_TABLE)
        version = current_version(conn)
        if version > LATEST_VERSION:
            raise StoreError(
                f"the pool database has schema version {version}, newer than this ceal knows "
                f"({LATEST_VERSION}): upgrade ceal, or point it at another database"
            )
        for step in MIGRATIONS:
            if version < step.version <= target:
                for statement in step.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, %s)",
                    (step.version, step.description, now),
                )
                version = step.version
    return version
