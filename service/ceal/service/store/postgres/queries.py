"""The Postgres backend's SQL: the shared statements of `../queries.py` in psycopg's placeholder style, plus the
row picks that lock.

Picks (leases, scoring claims) lock the pool's `images` rows they return with `FOR NO KEY UPDATE OF i SKIP
LOCKED`: a row another transaction is deciding on is skipped, not waited for. NO KEY UPDATE rather than
UPDATE, so the foreign-key checks of concurrent score and label inserts (KEY SHARE locks) never wait on a pick.
In READ COMMITTED a pick's NOT EXISTS sees the snapshot its statement started with, so a claim or lease
committed by another transaction between that snapshot and the row lock would be missed: every pick is
followed by a TAKEN statement, whose fresh snapshot sees every commit made before we held the locks, and the
store drops what it reports (`pick_free` runs the two). Array parameters are bound as one Python list (`= ANY(%s)`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, LiteralString

import psycopg

from ceal.service.store import queries as q

__all__ = ["pick_free", "to_psycopg"]

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def to_psycopg(sql: str) -> LiteralString:
    """A `../queries.py` statement for psycopg: `?` -> `%s`, `:name` -> `%(name)s`, `IN ({marks})` -> `= ANY(%s)`
    (bind one list). The input must hold no `%` (psycopg would read it as a placeholder)."""
    if "%" in sql:
        raise ValueError("shared SQL must not contain '%': psycopg reads it as a placeholder")
    sql = sql.replace("IN ({marks})", "= ANY(%s)")
    sql = _NAMED.sub(r"%(\1)s", sql)
    # Built only from the literal statements of queries.py: still a literal as far as injection goes.
    return sql.replace("?", "%s")


# --- shared statements ----------------------------------------------------------------------------------
INSERT_IMAGE = to_psycopg(q.INSERT_IMAGE)
SELECT_IMAGE = to_psycopg(q.SELECT_IMAGE)
SELECT_PIXELS = to_psycopg(q.SELECT_PIXELS)
IMAGE_EXISTS = to_psycopg(q.IMAGE_EXISTS)
LIST_IMAGES = to_psycopg(q.LIST_IMAGES)
ALL_IMAGE_IDS = to_psycopg(q.ALL_IMAGE_IDS)
EXISTING_IMAGE_IDS = to_psycopg(q.EXISTING_IMAGE_IDS)
POOLS = to_psycopg(q.POOLS)
NEEDS_SCORING = to_psycopg(q.NEEDS_SCORING)
UPSERT_SCORE = to_psycopg(q.UPSERT_SCORE)
INSERT_SCORE_HISTORY = to_psycopg(q.INSERT_SCORE_HISTORY)
FRESH_SCORES = to_psycopg(q.FRESH_SCORES)
UPSERT_SCORE_MASK = to_psycopg(q.UPSERT_SCORE_MASK)
PRUNE_SCORE_MASKS = to_psycopg(q.PRUNE_SCORE_MASKS)
SCORE_MASKS = to_psycopg(q.SCORE_MASKS)
DELETE_EXPIRED_CLAIMS = to_psycopg(q.DELETE_EXPIRED_CLAIMS)
UPSERT_CLAIM = to_psycopg(q.UPSERT_CLAIM)
LABEL_BY_IDEMPOTENCY_KEY = to_psycopg(q.LABEL_BY_IDEMPOTENCY_KEY)
LAST_LABEL_VERSION = to_psycopg(q.LAST_LABEL_VERSION)
INSERT_LABEL = to_psycopg(q.INSERT_LABEL)
LABEL_HISTORY = to_psycopg(q.LABEL_HISTORY)
LABELS_BY_ID = to_psycopg(q.LABELS_BY_ID)
LATEST_LABELS = to_psycopg(q.LATEST_LABELS)
DELETE_EXPIRED_LEASES = to_psycopg(q.DELETE_EXPIRED_LEASES)
UPSERT_LEASE = to_psycopg(q.UPSERT_LEASE)
ACTIVE_LEASES = to_psycopg(q.ACTIVE_LEASES)
DELETE_LEASE = to_psycopg(q.DELETE_LEASE)
COUNTS = to_psycopg(q.COUNTS)

# --- Postgres only --------------------------------------------------------------------------------------
# submit_label: one label writer per image at a time, so versions count up without gaps or collisions.
LOCK_IMAGE = "SELECT 1 FROM images WHERE pool = %s AND image_id = %s FOR NO KEY UPDATE"

# Parameters by name: pool, model, version, now, worker, exclude (ids already decided), limit.
PICK_CLAIMS = """
SELECT i.image_id FROM images i
LEFT JOIN scores s ON s.pool = i.pool AND s.image_id = i.image_id AND s.model_name = %(model)s
WHERE i.pool = %(pool)s AND (s.image_id IS NULL OR s.model_version <> %(version)s)
  AND NOT (i.image_id = ANY(%(exclude)s::text[]))
  AND NOT EXISTS (SELECT 1 FROM scoring_claims c
                  WHERE c.pool = i.pool AND c.image_id = i.image_id AND c.model_name = %(model)s
                    AND c.model_version = %(version)s AND c.expires_at > %(now)s AND c.worker <> %(worker)s)
ORDER BY i.created_at, i.image_id
LIMIT %(limit)s
FOR NO KEY UPDATE OF i SKIP LOCKED"""
# Of the picked `ids`, those scored at the version or claimed by another worker since the pick's snapshot.
CLAIMS_TAKEN = """
SELECT i.image_id FROM images i
WHERE i.pool = %(pool)s AND i.image_id = ANY(%(ids)s::text[])
  AND (EXISTS (SELECT 1 FROM scores s
               WHERE s.pool = i.pool AND s.image_id = i.image_id AND s.model_name = %(model)s
                 AND s.model_version = %(version)s)
       OR EXISTS (SELECT 1 FROM scoring_claims c
                  WHERE c.pool = i.pool AND c.image_id = i.image_id AND c.model_name = %(model)s
                    AND c.model_version = %(version)s AND c.expires_at > %(now)s AND c.worker <> %(worker)s))"""

# Parameters by name: pool, ranked (ids, deduplicated, best first), now, annotator, exclude, limit.
PICK_LEASES = """
SELECT i.image_id FROM unnest(%(ranked)s::text[]) WITH ORDINALITY AS r(image_id, rank)
JOIN images i ON i.pool = %(pool)s AND i.image_id = r.image_id
WHERE NOT (i.image_id = ANY(%(exclude)s::text[]))
  AND NOT EXISTS (SELECT 1 FROM labels h
                  WHERE h.pool = i.pool AND h.image_id = i.image_id AND h.source = 'human')
  AND NOT EXISTS (SELECT 1 FROM leases l
                  WHERE l.pool = i.pool AND l.image_id = i.image_id AND l.expires_at > %(now)s
                    AND l.annotator <> %(annotator)s)
ORDER BY r.rank
LIMIT %(limit)s
FOR NO KEY UPDATE OF i SKIP LOCKED"""
# Of the picked `ids`, those labelled by a human or leased to someone else since the pick's snapshot.
LEASES_TAKEN = """
SELECT i.image_id FROM images i
WHERE i.pool = %(pool)s AND i.image_id = ANY(%(ids)s::text[])
  AND (EXISTS (SELECT 1 FROM labels h
               WHERE h.pool = i.pool AND h.image_id = i.image_id AND h.source = 'human')
       OR EXISTS (SELECT 1 FROM leases l
                  WHERE l.pool = i.pool AND l.image_id = i.image_id AND l.expires_at > %(now)s
                    AND l.annotator <> %(annotator)s))"""


# Group (series / study) leases: one group lease per pool at a time (transaction-level advisory lock, keyed by
# a fixed number and the pool's hash), then each candidate group's rows locked in id order, waiting.
GROUP_LEASE_LOCK_KEY = 0x6C656173  # "leas"
GROUP_LEASE_LOCK = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
LOCK_SERIES = """
SELECT image_id FROM (SELECT image_id, slice_index FROM images WHERE pool = %s AND series_key = %s
                      ORDER BY image_id FOR NO KEY UPDATE) AS g
ORDER BY slice_index, image_id"""
LOCK_STUDY = """
SELECT image_id FROM (SELECT image_id, slice_index FROM images WHERE pool = %s AND study_key = %s
                      ORDER BY image_id FOR NO KEY UPDATE) AS g
ORDER BY slice_index, image_id"""
# Per image of `ids`: (image_id, labelled by a human, leased live to someone other than `annotator`).
GROUP_TAKEN = """
SELECT i.image_id,
       EXISTS (SELECT 1 FROM labels h WHERE h.pool = i.pool AND h.image_id = i.image_id AND h.source = 'human'),
       EXISTS (SELECT 1 FROM leases l WHERE l.pool = i.pool AND l.image_id = i.image_id
                                        AND l.expires_at > %(now)s AND l.annotator <> %(annotator)s)
FROM images i WHERE i.pool = %(pool)s AND i.image_id = ANY(%(ids)s::text[])"""


def pick_free(
    conn: psycopg.Connection, pick: LiteralString, taken: LiteralString, params: Mapping[str, Any], k: int
) -> list[str]:
    """Up to k ids from `pick` (a locking SKIP LOCKED query) that `taken` does not report, in pick order.

    Each round locks the next rows nobody else holds, then asks, in a fresh snapshot, which of them another
    transaction claimed after the pick's snapshot was taken (that transaction has committed: we hold the
    lock it held); those are dropped and the next round picks past them.
    """
    chosen: list[str] = []
    decided: list[str] = []
    while len(chosen) < k:
        rows = conn.execute(pick, {**params, "exclude": decided, "limit": k - len(chosen)}).fetchall()
        if not rows:
            break
        picked = [str(row[0]) for row in rows]
        lost = {str(row[0]) for row in conn.execute(taken, {**params, "ids": picked})}
        chosen.extend(image_id for image_id in picked if image_id not in lost)
        decided.extend(picked)
    return chosen
