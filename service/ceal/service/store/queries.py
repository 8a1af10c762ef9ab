"""Every DML statement the store runs, in one place.

Written in the SQL that SQLite and Postgres share (ON CONFLICT upserts, COALESCE, NOT EXISTS, scalar
subqueries), with `?` placeholders (`:name` in COUNTS and CLAIMABLE); `postgres/queries.py` translates them to
psycopg's style and adds the row picks that lock with `FOR NO KEY UPDATE ... SKIP LOCKED`. `{marks}` is filled
by `marks(n)` (Postgres binds one array instead).
"""

from __future__ import annotations

__all__ = ["marks"]


def marks(n: int) -> str:
    """'?, ?, ..., ?' with n placeholders, for an IN (...) list."""
    return ", ".join("?" * n)


# Column lists, in the order the row readers in rows.py expect.
IMAGE_COLUMNS = (
    "image_id, pool, height, width, channels, series_key, study_key, slice_index, "
    "dicom_study_uid, dicom_series_uid, dicom_sop_uid, dicom_frame, created_at, dtype, name"
)
SCORE_COLUMNS = (
    "image_id, model_name, model_version, entropy, mutual_information, variance, confidence, "
    "boundary_length, components, foreground_fraction, descriptor, scored_at"
)
LABEL_COLUMNS = "label_id, image_id, version, source, annotator, mask, seconds_spent, created_at, model_version"

# --- images -------------------------------------------------------------------------------------------
INSERT_IMAGE = """
INSERT INTO images (image_id, pool, height, width, channels, series_key, study_key, slice_index,
                    dicom_study_uid, dicom_series_uid, dicom_sop_uid, dicom_frame, dtype, pixels, name,
                    created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pool, image_id) DO NOTHING"""
SELECT_IMAGE = f"SELECT {IMAGE_COLUMNS} FROM images WHERE pool = ? AND image_id = ?"
SELECT_PIXELS = "SELECT pixels FROM images WHERE pool = ? AND image_id = ?"
IMAGE_EXISTS = "SELECT 1 FROM images WHERE pool = ? AND image_id = ?"
LIST_IMAGES = f"SELECT {IMAGE_COLUMNS} FROM images WHERE pool = ? ORDER BY created_at, image_id"
ALL_IMAGE_IDS = "SELECT image_id FROM images WHERE pool = ? ORDER BY created_at, image_id"
EXISTING_IMAGE_IDS = "SELECT image_id FROM images WHERE pool = ? AND image_id IN ({marks})"
POOLS = "SELECT DISTINCT pool FROM images ORDER BY pool"

# --- scores -------------------------------------------------------------------------------------------
NEEDS_SCORING = """
SELECT i.image_id FROM images i
LEFT JOIN scores s ON s.pool = i.pool AND s.image_id = i.image_id AND s.model_name = ?
WHERE i.pool = ? AND (s.image_id IS NULL OR s.model_version <> ?)
ORDER BY i.created_at, i.image_id"""
UPSERT_SCORE = f"""
INSERT INTO scores (pool, {SCORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pool, image_id, model_name) DO UPDATE SET
    model_version = excluded.model_version,
    entropy = excluded.entropy,
    mutual_information = excluded.mutual_information,
    variance = excluded.variance,
    confidence = excluded.confidence,
    boundary_length = excluded.boundary_length,
    components = excluded.components,
    foreground_fraction = excluded.foreground_fraction,
    descriptor = excluded.descriptor,
    scored_at = excluded.scored_at"""
INSERT_SCORE_HISTORY = """
INSERT INTO score_history (pool, image_id, model_name, model_version, entropy, mutual_information, variance,
                           confidence, boundary_length, components, foreground_fraction, scored_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
FRESH_SCORES = f"""
SELECT {SCORE_COLUMNS} FROM scores
WHERE pool = ? AND model_name = ? AND model_version = ?
ORDER BY image_id"""

# --- predicted masks per model version (the version ensemble) -------------------------------------------
UPSERT_SCORE_MASK = """
INSERT INTO score_masks (pool, image_id, model_name, model_version, height, width, mask, scored_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pool, image_id, model_name, model_version) DO UPDATE SET
    height = excluded.height, width = excluded.width, mask = excluded.mask, scored_at = excluded.scored_at"""
# Keep the newest `keep` versions of one image and model name. Parameters: pool, image, model, then the same
# three and keep.
PRUNE_SCORE_MASKS = """
DELETE FROM score_masks
WHERE pool = ? AND image_id = ? AND model_name = ?
  AND model_version NOT IN (SELECT k.model_version FROM score_masks k
                            WHERE k.pool = ? AND k.image_id = ? AND k.model_name = ?
                            ORDER BY k.model_version DESC LIMIT ?)"""
SCORE_MASKS = """
SELECT image_id, model_version, height, width, mask FROM score_masks
WHERE pool = ? AND model_name = ?
ORDER BY image_id, model_version DESC"""

# --- scoring claims (one worker per image and model version at a time) ----------------------------------
DELETE_EXPIRED_CLAIMS = "DELETE FROM scoring_claims WHERE pool = ? AND expires_at <= ?"
# Images that need scoring for the model version, without a live claim of another worker, oldest first.
# Parameters by name: pool, model, version, now, worker, limit.
CLAIMABLE = """
SELECT i.image_id FROM images i
LEFT JOIN scores s ON s.pool = i.pool AND s.image_id = i.image_id AND s.model_name = :model
WHERE i.pool = :pool AND (s.image_id IS NULL OR s.model_version <> :version)
  AND NOT EXISTS (SELECT 1 FROM scoring_claims c
                  WHERE c.pool = i.pool AND c.image_id = i.image_id AND c.model_name = :model
                    AND c.model_version = :version AND c.expires_at > :now AND c.worker <> :worker)
ORDER BY i.created_at, i.image_id
LIMIT :limit"""
UPSERT_CLAIM = """
INSERT INTO scoring_claims (pool, image_id, model_name, model_version, worker, expires_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (pool, image_id, model_name, model_version) DO UPDATE SET
    worker = excluded.worker, expires_at = excluded.expires_at"""

# --- labels -------------------------------------------------------------------------------------------
LABEL_BY_IDEMPOTENCY_KEY = f"""
SELECT {LABEL_COLUMNS}, mask_digest FROM labels WHERE pool = ? AND idempotency_key = ?"""
LAST_LABEL_VERSION = "SELECT COALESCE(MAX(version), 0) FROM labels WHERE pool = ? AND image_id = ?"
INSERT_LABEL = f"""
INSERT INTO labels ({LABEL_COLUMNS}, pool, mask_digest, idempotency_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
LABEL_HISTORY = f"SELECT {LABEL_COLUMNS} FROM labels WHERE pool = ? AND image_id = ? ORDER BY version"
LABELS_BY_ID = f"SELECT {LABEL_COLUMNS} FROM labels WHERE label_id IN ({{marks}}) ORDER BY image_id"
# Per image: the newest label of its source among the chosen ones, where a human label hides every pseudo
# label of the same image. Parameters: pool, then the sources.
LATEST_LABELS = """
SELECT l.label_id, l.image_id FROM labels l
WHERE l.pool = ? AND l.source IN ({marks})
  AND l.version = (SELECT MAX(m.version) FROM labels m
                   WHERE m.pool = l.pool AND m.image_id = l.image_id AND m.source = l.source)
  AND (l.source = 'human' OR NOT EXISTS (SELECT 1 FROM labels h
                                         WHERE h.pool = l.pool AND h.image_id = l.image_id
                                           AND h.source = 'human'))
ORDER BY l.image_id"""
HUMAN_LABELLED_IDS = "SELECT DISTINCT image_id FROM labels WHERE pool = ? AND source = 'human'"

# --- leases -------------------------------------------------------------------------------------------
LEASED_TO_OTHERS = "SELECT image_id FROM leases WHERE pool = ? AND expires_at > ? AND annotator <> ?"
DELETE_EXPIRED_LEASES = "DELETE FROM leases WHERE pool = ? AND expires_at <= ?"
UPSERT_LEASE = """
INSERT INTO leases (pool, image_id, annotator, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (pool, image_id) DO UPDATE SET annotator = excluded.annotator, expires_at = excluded.expires_at"""
ACTIVE_LEASES = """
SELECT image_id, annotator, expires_at FROM leases WHERE pool = ? AND expires_at > ?
ORDER BY expires_at, image_id"""
DELETE_LEASE = "DELETE FROM leases WHERE pool = ? AND image_id = ?"
# Every image of one series or study, in slice order (group leases). Parameters: pool, key.
SERIES_MEMBERS = "SELECT image_id FROM images WHERE pool = ? AND series_key = ? ORDER BY slice_index, image_id"
STUDY_MEMBERS = "SELECT image_id FROM images WHERE pool = ? AND study_key = ? ORDER BY slice_index, image_id"

# --- counts (one statement, so one snapshot) ----------------------------------------------------------
COUNTS = """
SELECT
    (SELECT COUNT(*) FROM images WHERE pool = :pool),
    (SELECT COUNT(DISTINCT series_key) FROM images WHERE pool = :pool),
    (SELECT COUNT(DISTINCT image_id) FROM labels WHERE pool = :pool AND source = 'human'),
    (SELECT COUNT(DISTINCT p.image_id) FROM labels p
     WHERE p.pool = :pool AND p.source = 'pseudo'
       AND NOT EXISTS (SELECT 1 FROM labels h
                       WHERE h.pool = p.pool AND h.image_id = p.image_id AND h.source = 'human')),
    (SELECT COUNT(*) FROM scores WHERE pool = :pool AND model_name = :model AND model_version = :version),
    (SELECT COUNT(*) FROM scores WHERE pool = :pool AND model_name = :model AND model_version <> :version),
    (SELECT COUNT(*) FROM leases WHERE pool = :pool AND expires_at > :now)"""
