"""Domain errors of the service core. The servicers map them to gRPC status codes in one place.

ServiceError
├── InvalidInput      → INVALID_ARGUMENT (the message says what to change)
├── NotFound          → NOT_FOUND
├── Conflict          → ALREADY_EXISTS (an idempotency key reused for other content)
├── Overloaded        → RESOURCE_EXHAUSTED (queue full; retry later)
├── DeadlineExceeded  → DEADLINE_EXCEEDED
└── Unavailable       → UNAVAILABLE (no model loaded yet, shutting down)

The pool store's errors (`ceal.service.store.errors`) are part of this tree, so they map here too; a
store failure that is none of the above (a locked or damaged database) is UNAVAILABLE.

Messages never carry pixel data or patient identifiers.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors the service core raises on purpose."""


class InvalidInput(ServiceError, ValueError):
    """The request is wrong; the message says what to change."""


class NotFound(ServiceError, LookupError):
    """A model, version, pool or image that does not exist."""


class Conflict(ServiceError):
    """The request contradicts what is already stored."""


class Overloaded(ServiceError):
    """The server cannot take the work now: the caller should back off and retry.

    retry_after: seconds after which a retry is expected to be admitted (None when unknown); the
    servicer layer may send it to the client (e.g. as google.rpc.RetryInfo). reason: "queue" (the queue
    is full) or "deadline" (the expected wait exceeds the call's deadline).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, reason: str = "queue") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


class DeadlineExceeded(ServiceError):
    """The caller's deadline passed before the work finished."""


class Unavailable(ServiceError):
    """The service cannot answer now (no model loaded, shutting down)."""
