"""`PoolStore` on PostgreSQL: the store several service replicas share.

Connections and error translation live in `postgres_connections.py` (a small psycopg pool, every connection
with synchronous_commit on), the SQL in `postgres_queries.py` (the shared DML of `queries.py` plus the
locking picks), the schema in `postgres_migrations.py` (applied under an advisory lock). This module is the
logic between them, the same as `sqlite.py`'s except where Postgres needs explicit row locks:

- leases and scoring claims are picked with `SELECT ... FOR NO KEY UPDATE SKIP LOCKED` and written in the same
  transaction, so concurrent replicas never hand out the same image (see `postgres_queries.pick_free`);
- a label write locks its image's row first, so label versions of one image are assigned one at a time.

Times come from the injected clock, not the database's `now()`: replicas' clocks must agree (NTP) to within
the lease lengths in use.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import psycopg

from ceal.service.store import postgres_queries as q
from ceal.service.store import rows as records
from ceal.service.store.base import (
    GroupLease,
    GroupLevel,
    ImageRecord,
    Label,
    LabelSource,
    Lease,
    NewImage,
    PoolCounts,
    PoolStore,
    ScoreRow,
)
from ceal.service.store.codec import content_digest, decode_array, encode_array
from ceal.service.store.errors import Conflict, NotFound, StoreError
from ceal.service.store.postgres_connections import PostgresConnections
from ceal.service.store.postgres_migrations import migrate
from ceal.service.store.validation import (
    check_claim_request,
    check_group_level,
    check_label_request,
    check_lease_request,
    check_mask,
    check_pool,
    check_score_row,
    check_sources,
    require_registered,
)

__all__ = ["PostgresPoolStore"]

_log = logging.getLogger(__name__)
_CHUNK = 500  # labels read per round trip when streaming an export


class PostgresPoolStore(PoolStore):
    """Pool store in the Postgres database at `url` (postgresql://user:password@host:port/database), migrated
    to the latest schema on open; the database must exist.

    clock: seconds since the epoch, injected so tests can move time. max_connections: the pool's size (one
    per concurrent store call; more wait up to timeout_s for a free one).
    """

    def __init__(
        self,
        url: str,
        clock: Callable[[], float] = time.time,
        *,
        max_connections: int = 10,
        timeout_s: float = 30.0,
    ) -> None:
        self._clock = clock
        self._db = PostgresConnections(url, max_size=max_connections, timeout_s=timeout_s)
        conn = self._db.connect()
        try:
            version = migrate(conn, now=self._clock())
        except psycopg.Error as exc:
            raise self._db.translate(exc) from exc
        finally:
            conn.close()
        self._db.open()
        _log.info("pool store opened: Postgres at %s (schema version %d)", self._db.where, version)

    @staticmethod
    def _existing_ids(conn: psycopg.Connection, pool: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return {str(row[0]) for row in conn.execute(q.EXISTING_IMAGE_IDS, (pool, list(ids)))}

    # --- images ----------------------------------------------------------------------------------------
    def register_images(self, pool: str, images: Sequence[NewImage]) -> list[tuple[str, bool]]:
        check_pool(pool)
        prepared = [records.new_image_params(pool, image) for image in images]  # before the transaction
        results: list[tuple[str, bool]] = []
        with self._db.transaction() as conn:
            now = self._clock()
            for params in prepared:
                cursor = conn.execute(q.INSERT_IMAGE, (*params, now))
                results.append((params[0], cursor.rowcount == 1))
        return results

    def get_image(self, pool: str, image_id: str) -> ImageRecord:
        check_pool(pool)
        with self._db.transaction() as conn:
            row = conn.execute(q.SELECT_IMAGE, (pool, image_id)).fetchone()
        if row is None:
            raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
        return records.image_record(row)

    def load_pixels(self, pool: str, image_id: str) -> np.ndarray:
        check_pool(pool)
        with self._db.transaction() as conn:
            row = conn.execute(q.SELECT_PIXELS, (pool, image_id)).fetchone()
        if row is None:
            raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
        return decode_array(bytes(row[0]))

    def list_images(self, pool: str) -> list[ImageRecord]:
        check_pool(pool)
        with self._db.transaction() as conn:
            return [records.image_record(row) for row in conn.execute(q.LIST_IMAGES, (pool,))]

    # --- scores ----------------------------------------------------------------------------------------
    def needs_scoring(self, pool: str, model_name: str, model_version: int, force: bool = False) -> list[str]:
        check_pool(pool)
        with self._db.transaction() as conn:
            if force:
                cursor = conn.execute(q.ALL_IMAGE_IDS, (pool,))
            else:
                cursor = conn.execute(q.NEEDS_SCORING, (model_name, pool, int(model_version)))
            return [str(row[0]) for row in cursor]

    def claim_scoring(
        self, pool: str, model_name: str, model_version: int, limit: int, lease_seconds: float, worker: str
    ) -> list[str]:
        check_pool(pool)
        check_claim_request(limit, lease_seconds, worker)
        with self._db.transaction() as conn:
            now = self._clock()
            conn.execute(q.DELETE_EXPIRED_CLAIMS, (pool, now))
            params = {"pool": pool, "model": model_name, "version": int(model_version), "now": now}
            ids = q.pick_free(conn, q.PICK_CLAIMS, q.CLAIMS_TAKEN, {**params, "worker": worker}, int(limit))
            expires_at = now + float(lease_seconds)
            with conn.cursor() as cursor:
                cursor.executemany(
                    q.UPSERT_CLAIM, [(pool, i, model_name, int(model_version), worker, expires_at) for i in ids]
                )
        return ids

    def put_scores(self, pool: str, rows: Sequence[ScoreRow]) -> None:
        check_pool(pool)
        for row in rows:
            check_score_row(row)
        ids = list(dict.fromkeys(row.image_id for row in rows))
        with self._db.transaction() as conn:
            now = self._clock()
            found = self._existing_ids(conn, pool, ids)
            require_registered(pool, ids, found, "register images before scoring them")
            for row in rows:
                numbers = records.score_numbers(row)
                scored_at = now if row.scored_at is None else float(row.scored_at)
                descriptor = None if row.descriptor is None else encode_array(row.descriptor)
                conn.execute(q.UPSERT_SCORE, (pool, *numbers, descriptor, scored_at))
                conn.execute(q.INSERT_SCORE_HISTORY, (pool, *numbers, scored_at))

    def score_rows(self, pool: str, model_name: str, model_version: int) -> list[ScoreRow]:
        check_pool(pool)
        with self._db.transaction() as conn:
            cursor = conn.execute(q.FRESH_SCORES, (pool, model_name, int(model_version)))
            return [records.score_row(row) for row in cursor]

    # --- labels ----------------------------------------------------------------------------------------
    def submit_label(
        self,
        pool: str,
        image_id: str,
        mask: np.ndarray,
        *,
        annotator: str,
        source: LabelSource,
        seconds_spent: float,
        idempotency_key: str | None = None,
        model_version: int | None = None,
    ) -> Label:
        check_pool(pool)
        key = idempotency_key or None
        chosen = check_label_request(annotator, source, seconds_spent, key, model_version)
        image = self.get_image(pool, image_id)
        mask8 = check_mask(mask, image.height, image.width)
        digest, blob = content_digest(mask8), encode_array(mask8)
        with self._db.transaction() as conn:
            conn.execute(q.LOCK_IMAGE, (pool, image_id))  # the image's label writers queue here
            if key is not None:
                first = conn.execute(q.LABEL_BY_IDEMPOTENCY_KEY, (pool, key)).fetchone()
                # first: LABEL_COLUMNS, then mask_digest; compare image_id, source, annotator, mask digest
                if first is not None:
                    if (first[1], first[3], first[4], first[9]) != (image_id, chosen, annotator, digest):
                        raise Conflict(
                            f"idempotency key {key!r} was already used in pool {pool!r} for a different "
                            "label (another image, source, annotator or mask): send a new key for a new label"
                        )
                    return records.label(first)
            (last,) = conn.execute(q.LAST_LABEL_VERSION, (pool, image_id)).fetchone() or (0,)
            label = Label(
                label_id=uuid.uuid4().hex,
                image_id=image_id,
                version=int(last) + 1,
                source=chosen,
                annotator=annotator,
                mask=mask8,
                seconds_spent=float(seconds_spent),
                created_at=self._clock(),
                model_version=None if model_version is None else int(model_version),
            )
            conn.execute(
                q.INSERT_LABEL,
                (
                    *(label.label_id, image_id, label.version, chosen, annotator, blob),
                    *(label.seconds_spent, label.created_at, label.model_version, pool, digest, key),
                ),
            )
            # A human label answers the query; a pseudo label must not take the image from its annotator.
            if chosen == "human":
                conn.execute(q.DELETE_LEASE, (pool, image_id))
        return label  # COMMIT returned: with synchronous_commit on, the label is on disk

    def latest_labels(self, pool: str, sources: set[str]) -> Iterator[Label]:
        check_pool(pool)
        chosen = sorted(check_sources(sources))
        with self._db.transaction() as conn:
            label_ids = [str(row[0]) for row in conn.execute(q.LATEST_LABELS, (pool, chosen))]
        return self._labels_by_id(label_ids)

    def _labels_by_id(self, label_ids: list[str]) -> Iterator[Label]:
        """Streams the labels chunk by chunk, so an export never holds every mask in memory (labels are
        immutable rows, so reading them in several transactions is consistent)."""
        for start in range(0, len(label_ids), _CHUNK):
            with self._db.transaction() as conn:
                found = conn.execute(q.LABELS_BY_ID, (label_ids[start : start + _CHUNK],))
                batch = [records.label(row) for row in found]
            yield from batch

    def label_history(self, pool: str, image_id: str) -> list[Label]:
        check_pool(pool)
        with self._db.transaction() as conn:
            if conn.execute(q.IMAGE_EXISTS, (pool, image_id)).fetchone() is None:
                raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
            return [records.label(row) for row in conn.execute(q.LABEL_HISTORY, (pool, image_id))]

    def labelled_ids(self, pool: str, source: LabelSource | None = None) -> set[str]:
        check_pool(pool)
        chosen = sorted(check_sources({"human", "pseudo"} if source is None else {source}))
        with self._db.transaction() as conn:
            return {str(row[1]) for row in conn.execute(q.LATEST_LABELS, (pool, chosen))}

    # --- leases ----------------------------------------------------------------------------------------
    def acquire_leases(
        self, pool: str, ranked_image_ids: Sequence[str], annotator: str, k: int, seconds: float
    ) -> list[Lease]:
        check_pool(pool)
        check_lease_request(annotator, k, seconds)
        ranked = list(dict.fromkeys(ranked_image_ids))
        with self._db.transaction() as conn:
            now = self._clock()
            found = self._existing_ids(conn, pool, ranked)
            require_registered(pool, ranked, found, "rank only registered images")
            params = {"pool": pool, "ranked": ranked, "now": now, "annotator": annotator}
            picked = set(q.pick_free(conn, q.PICK_LEASES, q.LEASES_TAKEN, params, k) if k else [])
            chosen = [image_id for image_id in ranked if image_id in picked]  # rounds may interleave ranks
            expires_at = now + float(seconds)
            conn.execute(q.DELETE_EXPIRED_LEASES, (pool, now))
            with conn.cursor() as cursor:
                cursor.executemany(q.UPSERT_LEASE, [(pool, i, annotator, expires_at) for i in chosen])
        return [Lease(image_id, annotator, expires_at) for image_id in chosen]

    def acquire_group_leases(
        self, pool: str, ranked_keys: Sequence[str], annotator: str, k: int, seconds: float, *, level: GroupLevel
    ) -> list[GroupLease]:
        check_pool(pool)
        check_lease_request(annotator, k, seconds)
        lock_members = q.LOCK_SERIES if check_group_level(level) == "series" else q.LOCK_STUDY
        granted: list[tuple[str, list[str]]] = []
        with self._db.transaction() as conn:
            now = self._clock()
            # Group leases of one pool queue on this lock, so two of them never wait on each other's rows.
            conn.execute(q.GROUP_LEASE_LOCK, (q.GROUP_LEASE_LOCK_KEY, pool))
            for key in dict.fromkeys(ranked_keys):
                if len(granted) >= k:
                    break
                # Wait for (not skip) the group's rows: a one-at-a-time lease or a label on them commits
                # first, and the next statement's fresh snapshot sees it.
                members = [str(row[0]) for row in conn.execute(lock_members, (pool, key))]
                if not members:
                    continue
                state = conn.execute(q.GROUP_TAKEN, {"pool": pool, "ids": members, "now": now, "annotator": annotator})
                human, others = set(), False
                for image_id, labelled, leased in state:
                    others = others or bool(leased)
                    if labelled:
                        human.add(str(image_id))
                free = [image_id for image_id in members if image_id not in human]
                if free and not others:
                    granted.append((key, free))
            expires_at = now + float(seconds)
            conn.execute(q.DELETE_EXPIRED_LEASES, (pool, now))
            with conn.cursor() as cursor:
                rows = [(pool, image_id, annotator, expires_at) for _, free in granted for image_id in free]
                cursor.executemany(q.UPSERT_LEASE, rows)
        return [
            GroupLease(key, tuple(Lease(image_id, annotator, expires_at) for image_id in free)) for key, free in granted
        ]

    def active_leases(self, pool: str) -> list[Lease]:
        check_pool(pool)
        with self._db.transaction() as conn:
            return [records.lease(row) for row in conn.execute(q.ACTIVE_LEASES, (pool, self._clock()))]

    def release_lease(self, pool: str, image_id: str) -> None:
        check_pool(pool)
        with self._db.transaction() as conn:
            conn.execute(q.DELETE_LEASE, (pool, image_id))

    # --- pool-wide -------------------------------------------------------------------------------------
    def counts(self, pool: str, model_name: str, model_version: int) -> PoolCounts:
        check_pool(pool)
        params = {"pool": pool, "model": model_name, "version": int(model_version), "now": self._clock()}
        with self._db.transaction() as conn:
            row = conn.execute(q.COUNTS, params).fetchone()
        if row is None:  # pragma: no cover - a SELECT of scalar subqueries always returns one row
            raise StoreError("the counts query returned nothing: check the Postgres server")
        return PoolCounts(*(int(value) for value in row))

    def pools(self) -> list[str]:
        with self._db.transaction() as conn:
            return [str(row[0]) for row in conn.execute(q.POOLS)]

    def close(self) -> None:
        """Close every connection. Call it after the server has stopped serving requests."""
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresPoolStore({self._db.where!r})"
