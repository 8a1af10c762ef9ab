"""The store's exception tree. Every store method raises only these.

    StoreError            anything else the store could not do (INTERNAL: e.g. a file that is no ceal pool)
    ├── NotFound          the pool has no such image (also a LookupError)
    ├── Conflict          the request contradicts what is stored (an idempotency key reused for other content)
    ├── WriteConflict     a concurrent write won (constraint, serialization failure): ABORTED, re-read and retry
    ├── StoreBusy         locked, unreachable, out of connections or closed: UNAVAILABLE, retried by clients
    ├── StoreDamaged      the database or a stored blob is damaged: DATA_LOSS, never retried
    ├── InvalidInput      malformed input: a bad shape, dtype, name or number (also a ValueError)
    └── UnsupportedBackend  the state names a backend this install cannot open (also a NotImplementedError)

Messages say what to change. They name pools, image ids (content hashes) and shapes, never pixel data, DICOM
UIDs or anything else that could identify a patient. Lower-level errors are translated in one place per
backend (sqlite3: `sqlite/connections.ThreadConnections.translate`; psycopg: `postgres/connections.PostgresConnections
.translate`; zlib: `codec.decode_array`) and raised `from` their cause.
"""

from __future__ import annotations

from ceal.service import errors as service_errors

__all__ = [
    "Conflict",
    "InvalidInput",
    "NotFound",
    "StoreBusy",
    "StoreDamaged",
    "StoreError",
    "UnsupportedBackend",
    "WriteConflict",
]


class StoreError(service_errors.ServiceError):
    """Base of every error the pool store raises."""

    reason = "STORE_ERROR"


class NotFound(StoreError, service_errors.NotFound):
    """The pool has no image with that id."""

    reason = "IMAGE_NOT_FOUND"


class Conflict(StoreError, service_errors.Conflict):
    """The request contradicts what is already stored."""

    reason = "IDEMPOTENCY_KEY_REUSED"


class WriteConflict(StoreError, service_errors.Aborted):
    """A concurrent write changed what this one relied on; re-read the pool and retry."""

    reason = "WRITE_CONFLICT"


class StoreBusy(StoreError, service_errors.Unavailable):
    """The database cannot be used now (locked, unreachable, no free connection, closed); retry later."""

    reason = "STORE_BUSY"


class StoreDamaged(StoreError, service_errors.DataLoss):
    """The database file or a stored blob is damaged; retrying cannot help. Restore from a backup."""

    reason = "STORE_DAMAGED"


class InvalidInput(StoreError, service_errors.InvalidInput):
    """The caller's input is malformed; the message says what to send instead."""

    reason = "INVALID_ARGUMENT"


class UnsupportedBackend(StoreError, NotImplementedError):
    """The state location needs a backend that is not available in this install."""
