"""SQLite schema, as an ordered list of migration steps applied on open.

`schema_version` holds one row per applied step; the database's version is the highest. `migrate` runs
every missing step, and records it, inside one BEGIN IMMEDIATE transaction, so two processes opening an old
file at once migrate it once and a failed step leaves the file as it was. Steps are append-only: never edit a
released one, add the next. (Postgres keeps its own list with its own types in `postgres_migrations.py`;
the DML in `queries.py` is shared.)
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ceal.service.store.errors import StoreError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "current_version", "migrate"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_SCORE_NUMBERS = """
    entropy REAL NOT NULL,
    mutual_information REAL NOT NULL,
    variance REAL NOT NULL,
    confidence REAL NOT NULL,
    boundary_length REAL NOT NULL,
    components INTEGER NOT NULL,
    foreground_fraction REAL NOT NULL,
"""
_IMAGE_FK = "FOREIGN KEY (pool, image_id) REFERENCES images (pool, image_id) ON DELETE CASCADE"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "images, current scores, labels, leases",
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
                pixels BLOB NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (pool, image_id)
            )""",
            "CREATE INDEX images_by_series ON images (pool, series_key)",
            f"""CREATE TABLE scores (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                {_SCORE_NUMBERS}
                scored_at REAL NOT NULL,
                PRIMARY KEY (pool, image_id, model_name),
                {_IMAGE_FK}
            )""",
            f"""CREATE TABLE labels (
                label_id TEXT PRIMARY KEY,
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                source TEXT NOT NULL CHECK (source IN ('human', 'pseudo')),
                annotator TEXT NOT NULL,
                mask BLOB NOT NULL,
                mask_digest TEXT NOT NULL,
                seconds_spent REAL NOT NULL,
                created_at REAL NOT NULL,
                model_version INTEGER,
                idempotency_key TEXT,
                UNIQUE (pool, image_id, version),
                UNIQUE (pool, idempotency_key),
                {_IMAGE_FK}
            )""",
            "CREATE INDEX labels_by_source ON labels (pool, source, image_id, version)",
            f"""CREATE TABLE leases (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                annotator TEXT NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (pool, image_id),
                {_IMAGE_FK}
            )""",
        ),
    ),
    Migration(
        2,
        "score descriptors for similarity search; score history across model versions",
        (
            "ALTER TABLE scores ADD COLUMN descriptor BLOB",
            f"""CREATE TABLE score_history (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                {_SCORE_NUMBERS}
                scored_at REAL NOT NULL,
                {_IMAGE_FK}
            )""",
            "CREATE INDEX score_history_by_image ON score_history (pool, image_id, model_name)",
            """INSERT INTO score_history
                SELECT pool, image_id, model_name, model_version, entropy, mutual_information, variance,
                       confidence, boundary_length, components, foreground_fraction, scored_at
                FROM scores""",
        ),
    ),
    Migration(
        3,
        "scoring claims, so several processes scoring one pool score each image once",
        (
            f"""CREATE TABLE scoring_claims (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                worker TEXT NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (pool, image_id, model_name, model_version),
                {_IMAGE_FK}
            )""",
            "CREATE INDEX scoring_claims_by_expiry ON scoring_claims (pool, expires_at)",
        ),
    ),
    Migration(
        4,
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
    applied_at REAL NOT NULL
)"""


def current_version(conn: sqlite3.Connection) -> int:
    """The highest applied step; 0 for a new file."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if exists is None:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, now: float, target: int = LATEST_VERSION) -> int:
    """Apply the missing steps up to `target` in one transaction; returns the version reached.

    conn must be in autocommit mode (isolation_level=None). Raises StoreError when the file was written by a
    newer ceal (its version is above LATEST_VERSION).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_CREATE_VERSION_TABLE)
        version = current_version(conn)
        if version > LATEST_VERSION:
            raise StoreError(
                f"the pool database has schema version {version}, newer than this ceal knows "
                f"({LATEST_VERSION}): upgrade ceal, or point it at another state directory"
            )
        for step in MIGRATIONS:
            if version < step.version <= target:
                for statement in step.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.description, now),
                )
                version = step.version
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return version
