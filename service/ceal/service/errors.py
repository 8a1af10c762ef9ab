"""Domain errors of the service core. The servicers map them to gRPC status codes in one place.

ServiceError                  → INTERNAL            (STORE_ERROR, …: not retried)
├── InvalidInput              → INVALID_ARGUMENT    (INVALID_ARGUMENT, INVALID_IMAGE, …: says what to change)
├── NotFound                  → NOT_FOUND           (MODEL_NOT_FOUND, IMAGE_NOT_FOUND, …)
├── Conflict                  → ALREADY_EXISTS      (IDEMPOTENCY_KEY_REUSED)
├── LeaseHeld                 → FAILED_PRECONDITION (LEASE_HELD: another annotator holds the image's lease)
├── Aborted                   → ABORTED             (WRITE_CONFLICT: a concurrent write won; re-read and retry)
├── Overloaded                → RESOURCE_EXHAUSTED  (OVERLOADED / WAIT_EXCEEDS_DEADLINE, with a retry delay)
├── DeadlineExceeded          → DEADLINE_EXCEEDED   (DEADLINE_EXCEEDED)
├── Unavailable               → UNAVAILABLE         (NO_MODEL_LOADED, SHUTTING_DOWN, STORE_BUSY, …: retry)
└── DataLoss                  → DATA_LOSS           (STORE_DAMAGED: restore from a backup; never retried)

Every error carries a `reason` (an UPPER_SNAKE_CASE word a program can switch on; the gRPC status sends it as
google.rpc.ErrorInfo with domain `ceal.v1`), optionally the request `field` it is about (sent as
google.rpc.BadRequest's field path, e.g. `image.tensor.shape`) and, for Overloaded, `retry_after` seconds
(google.rpc.RetryInfo). The pool store's errors (`ceal.service.store.errors`) are part of this tree.

Messages never carry pixel data or patient identifiers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ServiceError(Exception):
    """Base of the errors the service core raises on purpose; `reason`, `field` as in the module docstring."""

    reason = "INTERNAL"

    def __init__(self, message: str = "", *, reason: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.field = field


class InvalidInput(ServiceError, ValueError):
    """The request is wrong; the message says what to change."""

    reason = "INVALID_ARGUMENT"


class NotFound(ServiceError, LookupError):
    """A model, version, pool or image that does not exist."""

    reason = "NOT_FOUND"


class Conflict(ServiceError):
    """The request contradicts what is already stored (an idempotency key reused for other content)."""

    reason = "IDEMPOTENCY_KEY_REUSED"


class LeaseHeld(ServiceError):
    """The image is leased to another annotator; wait for the lease to end or ask for another image."""

    reason = "LEASE_HELD"


class Aborted(ServiceError):
    """A concurrent write changed what this one depended on; re-read and retry."""

    reason = "WRITE_CONFLICT"


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

    reason = "DEADLINE_EXCEEDED"


class Unavailable(ServiceError):
    """The service cannot answer now (no model loaded, shutting down, store busy): retry later."""

    reason = "UNAVAILABLE"


class DataLoss(ServiceError):
    """Stored data is damaged: retrying cannot help; restore from a backup."""

    reason = "STORE_DAMAGED"


@contextlib.contextmanager
def about(field: str, reason: str | None = None) -> Iterator[None]:
    """Tag an InvalidInput raised in the block with the request `field` (and `reason`) it concerns,
    unless the raiser already named them."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field is None:
            exc.field = field
        if reason is not None and exc.reason == InvalidInput.reason:  # a generic reason becomes the specific one
            exc.reason = reason
        raise
