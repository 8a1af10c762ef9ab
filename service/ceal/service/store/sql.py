"""`SQLPoolStore`: every `PoolStore` method once, over SQL that SQLite and Postgres share.

A backend (`sqlite/`, `postgres/`) opens its database, migrates it (`migrations.py`, one history for both) and
supplies the hooks where the two really differ:

- `_transaction(write=...)`: one transaction on a connection (SQLite: BEGIN IMMEDIATE for writes; Postgres:
  READ COMMITTED on a pooled connection), rolled back on any exception, driver errors made StoreErrors;
- `_rows_in(conn, sql, head, ids)`: binding an `IN ({marks})` list (SQLite: `?` marks, chunked under its
  variable limit; Postgres: one array bound to `= ANY(%s)`);
- `_execute_many`, `_lock_image` (a label write's per-image queue: nothing on SQLite, whose write
  transactions already run one at a time; a row lock on Postgres);
- `_pick_claims`, `_pick_leases`, `_group_picker`: which images a claim or lease may take (SQLite: plain
  reads, safe under its one writer; Postgres: `SKIP LOCKED` picks re-checked in a fresh snapshot).

`_q` is the backend's statement module: the names of `queries.py`, in its placeholder style.
"""

from __future__ import annotations

import abc
import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ceal.service.store import rows as records
from ceal.service.store.base import (
    MASK_VERSIONS,
    GroupLease,
    GroupLevel,
    ImageRecord,
    Label,
    LabelSource,
    Lease,
    NewImage,
    PackedMask,
    PoolCounts,
    PoolStore,
    ScoreRow,
)
from ceal.service.store.codec import content_digest, decode_array, encode_array
from ceal.service.store.errors import Conflict, NotFound, StoreError
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

__all__ = ["CHUNK", "GroupPicker", "SQLPoolStore"]

CHUNK = 500  # labels read per transaction when streaming an export; ids per IN (...) list on SQLite

# free_members(group key) -> the group's images to lease (not labelled by a human), or None when the group
# cannot be leased (empty, all labelled, or partly leased to someone else).
GroupPicker = Callable[[str], list[str] | None]


class SQLPoolStore(PoolStore):
    """The store logic over a backend's connection hooks. Subclasses set `_q` and `_clock` and implement the
    abstract hooks; `conn` below is the backend's connection (sqlite3 or psycopg), typed Any here."""

    _q: ClassVar[ModuleType]
    _clock: Callable[[], float]

    # --- backend hooks ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def _transaction(self, *, write: bool) -> contextlib.AbstractContextManager[Any]:
        """One transaction; `write` says whether it writes (SQLite takes the write lock up front)."""

    @abc.abstractmethod
    def _rows_in(self, conn: Any, sql: str, head: tuple[Any, ...], ids: Sequence[str]) -> Iterator[Any]:
        """The rows of `sql` (with one `IN ({marks})` list, after the `head` parameters) for every id."""

    @abc.abstractmethod
    def _execute_many(self, conn: Any, sql: str, rows: Sequence[tuple[Any, ...]]) -> None: ...

    def _lock_image(self, conn: Any, pool: str, image_id: str) -> None:
        """Queue the image's label writers (default: nothing, the transaction already serialises writes)."""

    @abc.abstractmethod
    def _pick_claims(self, conn: Any, params: Mapping[str, Any], limit: int) -> list[str]:
        """Up to `limit` ids to claim for scoring; params: pool, model, version, now, worker."""

    @abc.abstractmethod
    def _pick_leases(self, conn: Any, pool: str, ranked: list[str], now: float, annotator: str, k: int) -> list[str]:
        """Up to k of the `ranked` (registered, deduplicated) ids free to lease to `annotator`, in rank order."""

    @abc.abstractmethod
    def _group_picker(self, conn: Any, pool: str, level: GroupLevel, now: float, annotator: str) -> GroupPicker:
        """What decides, key by key, which groups of `level` may be leased in this transaction."""

    # --- shared helpers ---------------------------------------------------------------------------------
    def _existing_ids(self, conn: Any, pool: str, ids: Sequence[str]) -> set[str]:
        return {str(row[0]) for row in self._rows_in(conn, self._q.EXISTING_IMAGE_IDS, (pool,), ids)}

    # --- images ----------------------------------------------------------------------------------------
    def register_images(self, pool: str, images: Sequence[NewImage]) -> list[tuple[str, bool]]:
        check_pool(pool)
        prepared = [records.new_image_params(pool, image) for image in images]  # outside the transaction
        results: list[tuple[str, bool]] = []
        with self._transaction(write=True) as conn:
            now = self._clock()
            for params in prepared:
                cursor = conn.execute(self._q.INSERT_IMAGE, (*params, now))
                results.append((params[0], cursor.rowcount == 1))
        return results

    def get_image(self, pool: str, image_id: str) -> ImageRecord:
        check_pool(pool)
        with self._transaction(write=False) as conn:
            row = conn.execute(self._q.SELECT_IMAGE, (pool, image_id)).fetchone()
        if row is None:
            raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
        return records.image_record(row)

    def load_pixels(self, pool: str, image_id: str) -> np.ndarray:
        check_pool(pool)
        with self._transaction(write=False) as conn:
            row = conn.execute(self._q.SELECT_PIXELS, (pool, image_id)).fetchone()
        if row is None:
            raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
        return decode_array(bytes(row[0]))

    def list_images(self, pool: str) -> list[ImageRecord]:
        check_pool(pool)
        with self._transaction(write=False) as conn:
            return [records.image_record(row) for row in conn.execute(self._q.LIST_IMAGES, (pool,))]

    # --- scores ----------------------------------------------------------------------------------------
    def needs_scoring(self, pool: str, model_name: str, model_version: int, force: bool = False) -> list[str]:
        check_pool(pool)
        with self._transaction(write=False) as conn:
            if force:
                cursor = conn.execute(self._q.ALL_IMAGE_IDS, (pool,))
            else:
                cursor = conn.execute(self._q.NEEDS_SCORING, (model_name, pool, int(model_version)))
            return [str(row[0]) for row in cursor]

    def put_scores(self, pool: str, rows: Sequence[ScoreRow]) -> None:
        check_pool(pool)
        for row in rows:
            check_score_row(row)
        ids = list(dict.fromkeys(row.image_id for row in rows))
        with self._transaction(write=True) as conn:
            now = self._clock()
            require_registered(pool, ids, self._existing_ids(conn, pool, ids), "register images before scoring them")
            for row in rows:
                numbers = records.score_numbers(row)
                scored_at = now if row.scored_at is None else float(row.scored_at)
                descriptor = None if row.descriptor is None else encode_array(row.descriptor)
                conn.execute(self._q.UPSERT_SCORE, (pool, *numbers, descriptor, scored_at))
                conn.execute(self._q.INSERT_SCORE_HISTORY, (pool, *numbers, scored_at))
                if row.mask is not None:
                    conn.execute(self._q.UPSERT_SCORE_MASK, (pool, *records.mask_params(row, row.mask), scored_at))
                    key = (pool, row.image_id, row.model_name)
                    conn.execute(self._q.PRUNE_SCORE_MASKS, (*key, *key, MASK_VERSIONS))

    def version_masks(self, pool: str, model_name: str) -> dict[str, dict[int, PackedMask]]:
        check_pool(pool)
        out: dict[str, dict[int, PackedMask]] = {}
        with self._transaction(write=False) as conn:
            for row in conn.execute(self._q.SCORE_MASKS, (pool, model_name)):
                out.setdefault(str(row[0]), {})[int(row[1])] = records.packed_mask(row[2:])
        return out

    def claim_scoring(
        self, pool: str, model_name: str, model_version: int, limit: int, lease_seconds: float, worker: str
    ) -> list[str]:
        check_pool(pool)
        check_claim_request(limit, lease_seconds, worker)
        with self._transaction(write=True) as conn:  # the pick and the claim are one step
            now = self._clock()
            conn.execute(self._q.DELETE_EXPIRED_CLAIMS, (pool, now))
            params = {"pool": pool, "model": model_name, "version": int(model_version), "now": now, "worker": worker}
            ids = self._pick_claims(conn, params, int(limit))
            expires_at = now + float(lease_seconds)
            claims = [(pool, i, model_name, int(model_version), worker, expires_at) for i in ids]
            self._execute_many(conn, self._q.UPSERT_CLAIM, claims)
        return ids

    def score_rows(self, pool: str, model_name: str, model_version: int) -> list[ScoreRow]:
        check_pool(pool)
        with self._transaction(write=False) as conn:
            cursor = conn.execute(self._q.FRESH_SCORES, (pool, model_name, int(model_version)))
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
        with self._transaction(write=True) as conn:
            self._lock_image(conn, pool, image_id)
            if key is not None:
                first = conn.execute(self._q.LABEL_BY_IDEMPOTENCY_KEY, (pool, key)).fetchone()
                # first: LABEL_COLUMNS, then mask_digest; compare image_id, source, annotator, mask digest
                if first is not None:
                    if (first[1], first[3], first[4], first[9]) != (image_id, chosen, annotator, digest):
                        raise Conflict(
                            f"idempotency key {key!r} was already used in pool {pool!r} for a different "
                            "label (another image, source, annotator or mask): send a new key for a new label"
                        )
                    return records.label(first)
            (last,) = conn.execute(self._q.LAST_LABEL_VERSION, (pool, image_id)).fetchone() or (0,)
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
                self._q.INSERT_LABEL,
                (
                    *(label.label_id, image_id, label.version, chosen, annotator, blob),
                    *(label.seconds_spent, label.created_at, label.model_version, pool, digest, key),
                ),
            )
            # A human label answers the query; a pseudo label must not take the image from its annotator.
            if chosen == "human":
                conn.execute(self._q.DELETE_LEASE, (pool, image_id))
        return label  # the commit returned: the label is on disk (synchronous=FULL / synchronous_commit on)

    def latest_labels(self, pool: str, sources: set[str]) -> Iterator[Label]:
        check_pool(pool)
        chosen = sorted(check_sources(sources))
        with self._transaction(write=False) as conn:
            label_ids = [str(row[0]) for row in self._rows_in(conn, self._q.LATEST_LABELS, (pool,), chosen)]
        return self._labels_by_id(label_ids)

    def _labels_by_id(self, label_ids: list[str]) -> Iterator[Label]:
        """Streams the labels chunk by chunk, so an export never holds every mask in memory (labels are
        immutable rows, so reading them in several transactions is consistent)."""
        for start in range(0, len(label_ids), CHUNK):
            with self._transaction(write=False) as conn:
                found = self._rows_in(conn, self._q.LABELS_BY_ID, (), label_ids[start : start + CHUNK])
                batch = [records.label(row) for row in found]
            yield from batch

    def label_history(self, pool: str, image_id: str) -> list[Label]:
        check_pool(pool)
        with self._transaction(write=False) as conn:
            if conn.execute(self._q.IMAGE_EXISTS, (pool, image_id)).fetchone() is None:
                raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
            return [records.label(row) for row in conn.execute(self._q.LABEL_HISTORY, (pool, image_id))]

    def labelled_ids(self, pool: str, source: LabelSource | None = None) -> set[str]:
        check_pool(pool)
        chosen = sorted(check_sources({"human", "pseudo"} if source is None else {source}))
        with self._transaction(write=False) as conn:
            return {str(row[1]) for row in self._rows_in(conn, self._q.LATEST_LABELS, (pool,), chosen)}

    # --- leases ----------------------------------------------------------------------------------------
    def acquire_leases(
        self, pool: str, ranked_image_ids: Sequence[str], annotator: str, k: int, seconds: float
    ) -> list[Lease]:
        check_pool(pool)
        check_lease_request(annotator, k, seconds)
        ranked = list(dict.fromkeys(ranked_image_ids))
        with self._transaction(write=True) as conn:
            now = self._clock()
            require_registered(pool, ranked, self._existing_ids(conn, pool, ranked), "rank only registered images")
            chosen = self._pick_leases(conn, pool, ranked, now, annotator, k)
            expires_at = now + float(seconds)
            conn.execute(self._q.DELETE_EXPIRED_LEASES, (pool, now))
            self._execute_many(conn, self._q.UPSERT_LEASE, [(pool, i, annotator, expires_at) for i in chosen])
        return [Lease(image_id, annotator, expires_at) for image_id in chosen]

    def acquire_group_leases(
        self, pool: str, ranked_keys: Sequence[str], annotator: str, k: int, seconds: float, *, level: GroupLevel
    ) -> list[GroupLease]:
        check_pool(pool)
        check_lease_request(annotator, k, seconds)
        chosen_level = check_group_level(level)
        granted: list[tuple[str, list[str]]] = []
        with self._transaction(write=True) as conn:  # who holds what, and the group's leases: one step
            now = self._clock()
            free_members = self._group_picker(conn, pool, chosen_level, now, annotator)
            for key in dict.fromkeys(ranked_keys):
                if len(granted) >= k:
                    break
                free = free_members(key)
                if free:
                    granted.append((key, free))
            expires_at = now + float(seconds)
            conn.execute(self._q.DELETE_EXPIRED_LEASES, (pool, now))
            rows = [(pool, image_id, annotator, expires_at) for _, free in granted for image_id in free]
            self._execute_many(conn, self._q.UPSERT_LEASE, rows)
        return [
            GroupLease(key, tuple(Lease(image_id, annotator, expires_at) for image_id in free)) for key, free in granted
        ]

    def active_leases(self, pool: str) -> list[Lease]:
        check_pool(pool)
        with self._transaction(write=False) as conn:
            return [records.lease(row) for row in conn.execute(self._q.ACTIVE_LEASES, (pool, self._clock()))]

    def release_lease(self, pool: str, image_id: str) -> None:
        check_pool(pool)
        with self._transaction(write=True) as conn:
            conn.execute(self._q.DELETE_LEASE, (pool, image_id))

    # --- pool-wide -------------------------------------------------------------------------------------
    def counts(self, pool: str, model_name: str, model_version: int) -> PoolCounts:
        check_pool(pool)
        params = {"pool": pool, "model": model_name, "version": int(model_version), "now": self._clock()}
        with self._transaction(write=False) as conn:
            row = conn.execute(self._q.COUNTS, params).fetchone()
        if row is None:  # pragma: no cover - a SELECT of scalar subqueries always returns one row
            raise StoreError("the counts query returned nothing: check the database server")
        return PoolCounts(*(int(value) for value in row))

    def pools(self) -> list[str]:
        with self._transaction(write=False) as conn:
            return [str(row[0]) for row in conn.execute(self._q.POOLS)]
