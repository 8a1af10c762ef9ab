"""The pool schema, as one ordered list of migration steps for both backends, applied on open.

`schema_version` holds one row per applied step; the database's version is the highest, and version N means
the same tables on SQLite and on Postgres. Statements are written in SQLite's types; `statements(step,
"postgres")` maps REAL to DOUBLE PRECISION (SQLite's REAL is 8 bytes too) and BLOB to BYTEA, and adds the
step's Postgres-only statements (storage and index tuning, no new columns). Each backend's runner
(`sqlite/migrate.py`, `postgres/migrate.py`) applies every missing step and records it in one transaction,
so a failed step leaves the database as it was and two processes opening an old one at once migrate it once.
Steps are append-only: never edit a released one, add the next.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ceal.service.store.errors import StoreError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Dialect", "Migration", "apply_missing", "statements", "version_table"]

Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Migration:
    """One schema step. statements: in SQLite's types, run on both backends; postgres: run after them on
    Postgres only."""

    version: int
    description: str
    statements: tuple[str, ...]
    postgres: tuple[str, ...] = ()


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
        postgres=(
            # already zlib-compressed: Postgres should not try again
            "ALTER TABLE images ALTER COLUMN pixels SET STORAGE EXTERNAL",
            "ALTER TABLE labels ALTER COLUMN mask SET STORAGE EXTERNAL",
            # needs_scoring / claim_scoring walk a pool oldest first and stop at the limit
            "CREATE INDEX images_in_order ON images (pool, created_at, image_id)",
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
    Migration(
        5,
        "each image's predicted mask per model version (the last few), for the version-ensemble strategy",
        (
            f"""CREATE TABLE score_masks (
                pool TEXT NOT NULL,
                image_id TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                height INTEGER NOT NULL,
                width INTEGER NOT NULL,
                mask BLOB NOT NULL,
                scored_at REAL NOT NULL,
                PRIMARY KEY (pool, image_id, model_name, model_version),
                {_IMAGE_FK}
            )""",
            "CREATE INDEX score_masks_by_model ON score_masks (pool, model_name, image_id)",
        ),
        # already zlib-compressed: Postgres should not try again
        postgres=("ALTER TABLE score_masks ALTER COLUMN mask SET STORAGE EXTERNAL",),
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version

_ELSEWHERE: dict[str, str] = {"sqlite": "another state directory", "postgres": "another database"}
_POSTGRES_TYPES = {"REAL": "DOUBLE PRECISION", "BLOB": "BYTEA"}
_TYPE_WORD = re.compile(r"\b(REAL|BLOB)\b")

_CREATE_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""


def _in_types_of(sql: str, dialect: Dialect) -> str:
    return sql if dialect == "sqlite" else _TYPE_WORD.sub(lambda m: _POSTGRES_TYPES[m.group(1)], sql)


def version_table(dialect: Dialect) -> str:
    """CREATE TABLE IF NOT EXISTS schema_version, in `dialect`'s types."""
    return _in_types_of(_CREATE_VERSION_TABLE, dialect)


def statements(step: Migration, dialect: Dialect) -> tuple[str, ...]:
    """The statements that apply `step` on `dialect`, in order."""
    translated = tuple(_in_types_of(sql, dialect) for sql in step.statements)
    return translated if dialect == "sqlite" else translated + step.postgres


def apply_missing(
    execute: Callable[[str, tuple[Any, ...]], object],
    version: int,
    *,
    now: float,
    target: int,
    dialect: Dialect,
) -> int:
    """Run the steps above `version` up to `target` through `execute(sql, params)` (inside the caller's
    transaction) and record each; returns the version reached. Raises StoreError when `version` is newer than
    this ceal knows."""
    if version > LATEST_VERSION:
        raise StoreError(
            f"the pool database has schema version {version}, newer than this ceal knows "
            f"({LATEST_VERSION}): upgrade ceal, or point it at {_ELSEWHERE[dialect]}"
        )
    mark = "?" if dialect == "sqlite" else "%s"
    record = f"INSERT INTO schema_version (version, description, applied_at) VALUES ({mark}, {mark}, {mark})"
    for step in MIGRATIONS:
        if version < step.version <= target:
            for sql in statements(step, dialect):
                execute(sql, ())
            execute(record, (step.version, step.description, now))
            version = step.version
    return version
