"""`PoolStore` on one SQLite file in WAL mode: the embedded default for a single service replica.

Thread-safety and transactions live in `connections.py` (one connection per thread; every write one BEGIN
IMMEDIATE transaction); the SQL in `queries.py`; the schema in `migrations.py`. This module is the logic
between them. Durability: synchronous=FULL, so a label is on disk when `submit_label` returns.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ceal.service.store import queries as q
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
from ceal.service.store.connections import ThreadConnections
from ceal.service.store.errors import Conflict, InvalidInput, NotFound, StoreDamaged, StoreError
from ceal.service.store.migrations import migrate
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

__all__ = ["SQLitePoolStore"]

_log = logging.getLogger(__name__)
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_state_file(path: Path) -> None:
    """Refuse, before SQLite opens it, a state file that exists but is empty or not an SQLite database:
    SQLite would start an empty zero-length file silently as a new pool, hiding the pool that was lost."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return  # a new pool
    if size == 0:  # truncated: DATA_LOSS, never retried
        raise StoreDamaged(
            f"the pool database {path} is empty (0 bytes): it is not a pool store, and starting would hide "
            "whatever was lost. Restore it from a backup, or delete it to start a new, empty pool"
        )
    with open(path, "rb") as fh:
        header = fh.read(len(_SQLITE_HEADER))
    if header != _SQLITE_HEADER:
        raise StoreError(
            f"{path} is not an SQLite database, so not a ceal pool database (it is some other file): point "
            "--state at the folder of a ceal pool, or move the file away to start a new pool"
        )


def check_ceal_database(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite database written by something else (tables, but no ceal schema_version)."""
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if tables and "schema_version" not in tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            f"{path} is an SQLite database of something else (tables {shown}), not a ceal pool: point --state "
            "at the folder of a ceal pool, or move the file away to start a new pool"
        )


class SQLitePoolStore(PoolStore):
    """Pool store in the SQLite file at `path` (created, and migrated to the latest schema, on open).

    clock: seconds since the epoch, injected so tests can move time. busy_timeout_s: how long a write waits
    for another writer before StoreError.
    """

    def __init__(
        self, path: Path | str, clock: Callable[[], float] = time.time, *, busy_timeout_s: float = 30.0
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise InvalidInput("SQLitePoolStore needs a file path: every thread opens its own connection to it")
        self._path = Path(path)
        if not self._path.parent.is_dir():
            raise InvalidInput(f"folder {self._path.parent} does not exist: create it, or use open_store(dir)")
        self._clock = clock
        check_state_file(self._path)
        self._db = ThreadConnections(self._path, busy_timeout_s)
        try:
            conn = self._db.get()
            check_ceal_database(conn, self._path)
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self._path} cannot use write-ahead logging (journal mode stays {mode}): "
                    "put the state directory on a local disk"
                )
            version = migrate(conn, now=self._clock())
        except sqlite3.Error as exc:
            self._db.close()
            raise self._db.translate(exc) from exc
        except StoreError:
            self._db.close()
            raise
        _log.info("pool store opened: %s (schema version %d)", self._path, version)

    def _existing_ids(self, conn: sqlite3.Connection, pool: str, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ids):
            sql = q.EXISTING_IMAGE_IDS.format(marks=q.marks(len(chunk)))
            found.update(row[0] for row in conn.execute(sql, (pool, *chunk)))
        return found

    # --- images ----------------------------------------------------------------------------------------
    def register_images(self, pool: str, images: Sequence[NewImage]) -> list[tuple[str, bool]]:
        check_pool(pool)
        prepared = [records.new_image_params(pool, image) for image in images]  # outside the write lock
        results: list[tuple[str, bool]] = []
        with self._db.transaction(write=True) as conn:
            now = self._clock()
            for params in prepared:
                cursor = conn.execute(q.INSERT_IMAGE, (*params, now))
                results.append((params[0], cursor.rowcount == 1))
        return results

    def get_image(self, pool: str, image_id: str) -> ImageRecord:
        check_pool(pool)
        with self._db.transaction(write=False) as conn:
            row = conn.execute(q.SELECT_IMAGE, (pool, image_id)).fetchone()
        if row is None:
            raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
        return records.image_record(row)

    def load_pixels(self, pool: str, image_id: str) -> np.ndarray:
        check_pool(pool)
        with self._db.transaction(write=False) as conn:
            row = conn.execute(q.SELECT_PIXELS, (pool, image_id)).fetchone()
        if row is None:
            raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
        return decode_array(bytes(row[0]))

    def list_images(self, pool: str) -> list[ImageRecord]:
        check_pool(pool)
        with self._db.transaction(write=False) as conn:
            return [records.image_record(row) for row in conn.execute(q.LIST_IMAGES, (pool,))]

    # --- scores ----------------------------------------------------------------------------------------
    def needs_scoring(self, pool: str, model_name: str, model_version: int, force: bool = False) -> list[str]:
        check_pool(pool)
        with self._db.transaction(write=False) as conn:
            if force:
                cursor = conn.execute(q.ALL_IMAGE_IDS, (pool,))
            else:
                cursor = conn.execute(q.NEEDS_SCORING, (model_name, pool, int(model_version)))
            return [str(row[0]) for row in cursor]

    def put_scores(self, pool: str, rows: Sequence[ScoreRow]) -> None:
        check_pool(pool)
        for row in rows:
            check_score_row(row)
        ids = list(dict.fromkeys(row.image_id for row in rows))
        with self._db.transaction(write=True) as conn:
            now = self._clock()
            require_registered(pool, ids, self._existing_ids(conn, pool, ids), "register images before scoring them")
            for row in rows:
                numbers = records.score_numbers(row)
                scored_at = now if row.scored_at is None else float(row.scored_at)
                descriptor = None if row.descriptor is None else encode_array(row.descriptor)
                conn.execute(q.UPSERT_SCORE, (pool, *numbers, descriptor, scored_at))
                conn.execute(q.INSERT_SCORE_HISTORY, (pool, *numbers, scored_at))

    def claim_scoring(
        self, pool: str, model_name: str, model_version: int, limit: int, lease_seconds: float, worker: str
    ) -> list[str]:
        check_pool(pool)
        check_claim_request(limit, lease_seconds, worker)
        # BEGIN IMMEDIATE: the pick and the claim are one step for every thread and process on the file.
        with self._db.transaction(write=True) as conn:
            now = self._clock()
            conn.execute(q.DELETE_EXPIRED_CLAIMS, (pool, now))
            params = {"pool": pool, "model": model_name, "version": int(model_version), "now": now}
            found = conn.execute(q.CLAIMABLE, {**params, "worker": worker, "limit": int(limit)})
            ids = [str(row[0]) for row in found]
            expires_at = now + float(lease_seconds)
            claims = [(pool, i, model_name, int(model_version), worker, expires_at) for i in ids]
            conn.executemany(q.UPSERT_CLAIM, claims)
        return ids

    def score_rows(self, pool: str, model_name: str, model_version: int) -> list[ScoreRow]:
        check_pool(pool)
        with self._db.transaction(write=False) as conn:
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
        with self._db.transaction(write=True) as conn:
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
            (last,) = conn.execute(q.LAST_LABEL_VERSION, (pool, image_id)).fetchone()
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
        return label

    def latest_labels(self, pool: str, sources: set[str]) -> Iterator[Label]:
        check_pool(pool)
        chosen = sorted(check_sources(sources))
        with self._db.transaction(write=False) as conn:
            sql = q.LATEST_LABELS.format(marks=q.marks(len(chosen)))
            label_ids = [str(row[0]) for row in conn.execute(sql, (pool, *chosen))]
        return self._labels_by_id(label_ids)

    def _labels_by_id(self, label_ids: list[str]) -> Iterator[Label]:
        """Streams the labels chunk by chunk, so an export never holds every mask in memory (labels are
        immutable rows, so reading them in several transactions is consistent)."""
        for chunk in _chunks(label_ids):
            with self._db.transaction(write=False) as conn:
                found = conn.execute(q.LABELS_BY_ID.format(marks=q.marks(len(chunk))), tuple(chunk))
                batch = [records.label(row) for row in found]
            yield from batch

    def label_history(self, pool: str, image_id: str) -> list[Label]:
        check_pool(pool)
        with self._db.transaction(write=False) as conn:
            if conn.execute(q.IMAGE_EXISTS, (pool, image_id)).fetchone() is None:
                raise NotFound(f"image {image_id} is not in pool {pool!r}: register it first")
            return [records.label(row) for row in conn.execute(q.LABEL_HISTORY, (pool, image_id))]

    def labelled_ids(self, pool: str, source: LabelSource | None = None) -> set[str]:
        check_pool(pool)
        chosen = sorted(check_sources({"human", "pseudo"} if source is None else {source}))
        with self._db.transaction(write=False) as conn:
            sql = q.LATEST_LABELS.format(marks=q.marks(len(chosen)))
            return {str(row[1]) for row in conn.execute(sql, (pool, *chosen))}

    # --- leases ----------------------------------------------------------------------------------------
    def acquire_leases(
        self, pool: str, ranked_image_ids: Sequence[str], annotator: str, k: int, seconds: float
    ) -> list[Lease]:
        check_pool(pool)
        check_lease_request(annotator, k, seconds)
        ranked = list(dict.fromkeys(ranked_image_ids))
        with self._db.transaction(write=True) as conn:
            now = self._clock()
            require_registered(pool, ranked, self._existing_ids(conn, pool, ranked), "rank only registered images")
            blocked = {str(row[0]) for row in conn.execute(q.HUMAN_LABELLED_IDS, (pool,))}
            blocked.update(str(row[0]) for row in conn.execute(q.LEASED_TO_OTHERS, (pool, now, annotator)))
            chosen = [image_id for image_id in ranked if image_id not in blocked][:k]
            expires_at = now + float(seconds)
            conn.execute(q.DELETE_EXPIRED_LEASES, (pool, now))
            conn.executemany(q.UPSERT_LEASE, [(pool, image_id, annotator, expires_at) for image_id in chosen])
        return [Lease(image_id, annotator, expires_at) for image_id in chosen]

    def acquire_group_leases(
        self, pool: str, ranked_keys: Sequence[str], annotator: str, k: int, seconds: float, *, level: GroupLevel
    ) -> list[GroupLease]:
        check_pool(pool)
        check_lease_request(annotator, k, seconds)
        members_sql = q.SERIES_MEMBERS if check_group_level(level) == "series" else q.STUDY_MEMBERS
        granted: list[tuple[str, list[str]]] = []
        # BEGIN IMMEDIATE: reading who holds what and writing the group's leases are one step for every writer.
        with self._db.transaction(write=True) as conn:
            now = self._clock()
            human = {str(row[0]) for row in conn.execute(q.HUMAN_LABELLED_IDS, (pool,))}
            others = {str(row[0]) for row in conn.execute(q.LEASED_TO_OTHERS, (pool, now, annotator))}
            for key in dict.fromkeys(ranked_keys):
                if len(granted) >= k:
                    break
                members = [str(row[0]) for row in conn.execute(members_sql, (pool, key))]
                free = [image_id for image_id in members if image_id not in human]
                if free and not others.intersection(members):
                    granted.append((key, free))
            expires_at = now + float(seconds)
            conn.execute(q.DELETE_EXPIRED_LEASES, (pool, now))
            rows = [(pool, image_id, annotator, expires_at) for _, free in granted for image_id in free]
            conn.executemany(q.UPSERT_LEASE, rows)
        return [
            GroupLease(key, tuple(Lease(image_id, annotator, expires_at) for image_id in free)) for key, free in granted
        ]

    def active_leases(self, pool: str) -> list[Lease]:
        check_pool(pool)
        with self._db.transaction(write=False) as conn:
            return [records.lease(row) for row in conn.execute(q.ACTIVE_LEASES, (pool, self._clock()))]

    def release_lease(self, pool: str, image_id: str) -> None:
        check_pool(pool)
        with self._db.transaction(write=True) as conn:
            conn.execute(q.DELETE_LEASE, (pool, image_id))

    # --- pool-wide -------------------------------------------------------------------------------------
    def counts(self, pool: str, model_name: str, model_version: int) -> PoolCounts:
        check_pool(pool)
        params = {"pool": pool, "model": model_name, "version": int(model_version), "now": self._clock()}
        with self._db.transaction(write=False) as conn:
            row = conn.execute(q.COUNTS, params).fetchone()
        return PoolCounts(*(int(value) for value in row))

    def pools(self) -> list[str]:
        with self._db.transaction(write=False) as conn:
            return [str(row[0]) for row in conn.execute(q.POOLS)]

    def close(self) -> None:
        """Close every thread's connection. Call it after the server has stopped serving requests."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLitePoolStore({str(self._path)!r})"
