"""The store's exception tree. Every store method raises only these.

    StoreError            anything the store could not do (a locked or damaged database, a closed store)
    ├── NotFound          the pool has no such image (also a LookupError)
    ├── Conflict          the request contradicts what is stored (an idempotency key reused for other content)
    ├── InvalidInput      malformed input: a bad shape, dtype, name or number (also a ValueError)
    └── UnsupportedBackend  the state names a backend this install cannot open (also a NotImplementedError)

Messages say what to change. They name pools, image ids (content hashes) and shapes, never pixel data, DICOM
UIDs or anything else that could identify a patient. Lower-level errors are translated in one place per
backend (sqlite3: `sqlite/connections.ThreadConnections.translate`; psycopg: `postgres/connections.PostgresConnections
.translate`; zlib: `codec.decode_array`) and raised `from` their cause.
"""

from __future__ import annotations

from ceal.service import errors as service_errors

__all__ = ["Conflict", "InvalidInput", "NotFound", "StoreError", "UnsupportedBackend"]


class StoreError(service_errors.ServiceError):
    """Base of every error the pool store raises."""


class NotFound(StoreError, service_errors.NotFound):
    """The pool has no image with that id."""


class Conflict(StoreError, service_errors.Conflict):
    """The request contradicts what is already stored."""


class InvalidInput(StoreError, service_errors.InvalidInput):
    """The caller's input is malformed; the message says what to send instead."""


class UnsupportedBackend(StoreError, NotImplementedError):
    """The state location needs a backend that is not available in this install."""
