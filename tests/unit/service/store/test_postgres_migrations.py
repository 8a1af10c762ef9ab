"""Postgres databases made before the two backends shared one migration history open, keep their data and
end with the same tables, and the same version numbers, as a new one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import psycopg
import pytest

from ceal.service.store import encode_array
from ceal.service.store.migrations import LATEST_VERSION, MIGRATIONS
from ceal.service.store.postgres import PostgresPoolStore
from ceal.service.store.postgres.migrate import LEGACY_STEPS
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.postgres
Pixels = Callable[..., np.ndarray]

# The released Postgres-only history, frozen as it shipped (its step 1 = shared steps 1-3, its step 2 = step 4).
_NUMBERS = """entropy DOUBLE PRECISION NOT NULL, mutual_information DOUBLE PRECISION NOT NULL,
    variance DOUBLE PRECISION NOT NULL, confidence DOUBLE PRECISION NOT NULL,
    boundary_length DOUBLE PRECISION NOT NULL, components INTEGER NOT NULL,
    foreground_fraction DOUBLE PRECISION NOT NULL,"""
_FK = "FOREIGN KEY (pool, image_id) REFERENCES images (pool, image_id) ON DELETE CASCADE"
_LEGACY_1 = (
    """CREATE TABLE images (pool TEXT NOT NULL, image_id TEXT NOT NULL, height INTEGER NOT NULL,
    width INTEGER NOT NULL, channels INTEGER NOT NULL, dtype TEXT NOT NULL, series_key TEXT NOT NULL,
    study_key TEXT NOT NULL, slice_index INTEGER NOT NULL, dicom_study_uid TEXT, dicom_series_uid TEXT,
    dicom_sop_uid TEXT, dicom_frame INTEGER, pixels BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool, image_id))""",
    "ALTER TABLE images ALTER COLUMN pixels SET STORAGE EXTERNAL",
    "CREATE INDEX images_by_series ON images (pool, series_key)",
    "CREATE INDEX images_in_order ON images (pool, created_at, image_id)",
    f"""CREATE TABLE scores (pool TEXT NOT NULL, image_id TEXT NOT NULL, model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL, {_NUMBERS} descriptor BYTEA, scored_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool, image_id, model_name), {_FK})""",
    f"""CREATE TABLE score_history (pool TEXT NOT NULL, image_id TEXT NOT NULL, model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL, {_NUMBERS} scored_at DOUBLE PRECISION NOT NULL, {_FK})""",
    "CREATE INDEX score_history_by_image ON score_history (pool, image_id, model_name)",
    f"""CREATE TABLE labels (label_id TEXT PRIMARY KEY, pool TEXT NOT NULL, image_id TEXT NOT NULL,
    version INTEGER NOT NULL, source TEXT NOT NULL CHECK (source IN ('human', 'pseudo')),
    annotator TEXT NOT NULL, mask BYTEA NOT NULL, mask_digest TEXT NOT NULL,
    seconds_spent DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL, model_version INTEGER,
    idempotency_key TEXT, UNIQUE (pool, image_id, version), UNIQUE (pool, idempotency_key), {_FK})""",
    "ALTER TABLE labels ALTER COLUMN mask SET STORAGE EXTERNAL",
    "CREATE INDEX labels_by_source ON labels (pool, source, image_id, version)",
    f"""CREATE TABLE leases (pool TEXT NOT NULL, image_id TEXT NOT NULL, annotator TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (pool, image_id), {_FK})""",
    f"""CREATE TABLE scoring_claims (pool TEXT NOT NULL, image_id TEXT NOT NULL, model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL, worker TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool, image_id, model_name, model_version), {_FK})""",
    "CREATE INDEX scoring_claims_by_expiry ON scoring_claims (pool, expires_at)",
)
_LEGACY_2 = (
    "ALTER TABLE images ADD COLUMN name TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX images_by_name ON images (pool, name)",
    "CREATE INDEX images_by_study ON images (pool, study_key)",
)


def _legacy_database(url: str, steps: int, pixels: np.ndarray) -> None:
    """A database as the released Postgres-only history left it at `steps`, holding one scored image."""
    descriptions = sorted(LEGACY_STEPS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        for number, ddl in zip(range(steps), (_LEGACY_1, _LEGACY_2), strict=False):
            for statement in ddl:
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_version VALUES (%s, %s, %s)", (*descriptions[number], 7.0 + number))
        conn.execute(
            "INSERT INTO images (pool, image_id, height, width, channels, dtype, series_key, study_key, "
            "slice_index, pixels, created_at) VALUES ('p', 'a', 6, 5, 1, '<u2', 's', 't', 0, %s, 5.0)",
            (encode_array(pixels),),
        )
        conn.execute("INSERT INTO scores VALUES ('p', 'a', 'unet', 1, 0.5, 0.1, 0.01, 0.9, 10.0, 1, 0.2, NULL, 6.0)")


def _history(url: str) -> list[tuple[int, str, float]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, description, applied_at FROM schema_version ORDER BY version")
        return [(int(v), str(d), float(a)) for v, d, a in rows]


def _catalog(url: str) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(table, column, type, nullable, default) of every column; (table, index definition) of every index."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, COALESCE(column_default, '') "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'schema_version'"
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, regexp_replace(indexdef, ' ON \\S+\\.', ' ON ') FROM pg_indexes "
            "WHERE schemaname = current_schema()"
        ).fetchall()
    return {tuple(map(str, row)) for row in columns}, {tuple(map(str, row)) for row in indexes}


@pytest.mark.parametrize("legacy_steps", [1, 2])
def test_a_legacy_database_is_renumbered_migrated_and_keeps_its_data(
    postgres_url: str, legacy_steps: int, pixels: Pixels
) -> None:
    image = pixels(3)
    _legacy_database(postgres_url, legacy_steps, image)
    with PostgresPoolStore(postgres_url, clock=lambda: 100.0) as store:
        np.testing.assert_array_equal(store.load_pixels("p", "a"), image)
        (row,) = store.score_rows("p", "unet", 1)
        assert (row.entropy, row.scored_at) == (0.5, 6.0)
        assert store.get_image("p", "a").name == ""
    history = _history(postgres_url)
    assert [version for version, _, _ in history] == list(range(1, LATEST_VERSION + 1))
    assert [description for _, description, _ in history] == [step.description for step in MIGRATIONS]
    # the renumbered steps keep when they were applied; the missing ones (and every step after 4) were applied now
    renumbered = [7.0, 7.0, 7.0, 8.0 if legacy_steps == 2 else 100.0]
    assert [applied for _, _, applied in history] == renumbered + [100.0] * (LATEST_VERSION - 4)


def test_a_renumbered_legacy_database_has_the_tables_of_a_new_one(
    postgres_url: str, postgres: PostgresCluster, pixels: Pixels
) -> None:
    fresh = postgres.create_schema()
    _legacy_database(postgres_url, 2, pixels(1))
    PostgresPoolStore(postgres_url).close()
    PostgresPoolStore(fresh).close()
    assert _catalog(postgres_url) == _catalog(fresh)
    assert _catalog(fresh)[0]  # the comparison saw columns
