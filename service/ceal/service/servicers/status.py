"""The one place where domain errors become gRPC statuses, with google.rpc rich error details.

Every failed call carries, in the `grpc-status-details-bin` trailer (grpcio-status), a google.rpc.Status with:

- ErrorInfo: `reason` (the error's UPPER_SNAKE_CASE word: INVALID_IMAGE, MODEL_NOT_FOUND, LEASE_HELD, …),
  `domain` "ceal.v1";
- BadRequest with one field violation (`field` = the request field path, e.g. `image.tensor.shape`) when
  the error names the field it is about (INVALID_ARGUMENT);
- RetryInfo with the delay to wait on RESOURCE_EXHAUSTED (the batcher's estimate, `Overloaded.retry_after`).

Codes (errors.py has the tree): a write conflict is ABORTED, a damaged store DATA_LOSS, any other store
failure INTERNAL; only UNAVAILABLE (store busy, no model yet, shutting down) is one that clients retry.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ceal.service import errors
from ceal.service.servicers.fields import check_fields

__all__ = ["CODES", "DOMAIN", "abort", "code_for", "status_for", "streaming", "unary"]

log = logging.getLogger(__name__)

DOMAIN = "ceal.v1"

# Checked in order: the first class the error is an instance of decides (subclasses before their bases).
CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.ALREADY_EXISTS),
    (errors.LeaseHeld, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DataLoss, grpc.StatusCode.DATA_LOSS),
    (errors.ServiceError, grpc.StatusCode.INTERNAL),  # e.g. a store that is no ceal pool: retrying cannot help
    (CancelledError, grpc.StatusCode.CANCELLED),  # the caller cancelled; its queued work was skipped
)

F = TypeVar("F", bound=Callable[..., Any])


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# Overloaded.reason says why ("queue": full; "deadline": the wait would outlast the call's deadline).
_OVERLOAD_REASONS = {"queue": "OVERLOADED", "deadline": "WAIT_EXCEEDS_DEADLINE"}


def _classify(exc: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """(code, reason, message) of an error; unexpected ones are logged and answered INTERNAL."""
    for kind, code in CODES:
        if isinstance(exc, kind):
            reason = exc.reason if isinstance(exc, errors.ServiceError) else code.name
            if isinstance(exc, errors.Overloaded):
                reason = _OVERLOAD_REASONS.get(reason, reason.upper())
            return code, reason, str(exc)
    log.exception("internal error", exc_info=exc)
    return (
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
        f"internal error ({type(exc).__name__}); the server log has the details",
    )


def code_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message for `exc`."""
    code, _reason, message = _classify(exc)
    return code, message


def status_for(exc: BaseException, prefix: str = "") -> status_pb2.Status:
    """The google.rpc.Status for `exc`: code, message (after `prefix`), ErrorInfo and the details above."""
    code, reason, message = _classify(exc)
    message = prefix + message
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN))]
    field = getattr(exc, "field", None)
    if code == grpc.StatusCode.INVALID_ARGUMENT and field:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    retry_after = getattr(exc, "retry_after", None)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(max(float(retry_after), 0.0) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def abort(context: grpc.ServicerContext, exc: BaseException, prefix: str = "") -> NoReturn:
    """End the call with the status (and rich details) of `exc`."""
    context.abort_with_status(rpc_status.to_status(status_for(exc, prefix)))
    raise AssertionError("unreachable: abort_with_status raises")  # pragma: no cover


def _passes_through(exc: BaseException) -> bool:
    """gRPC's own control flow (an abort already made, an RpcError) is not ours to map."""
    return isinstance(exc, grpc.RpcError) or type(exc).__name__ == "_AbortException"


def unary(fn: F) -> F:
    """Wrap a unary handler `(self, request, context)`: the request's fields checked (`check_fields`), and
    domain errors become statuses."""

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            check_fields(request)
            return fn(self, request, context)
        except Exception as exc:
            if _passes_through(exc):
                raise
            abort(context, exc)

    return wrapper  # type: ignore[return-value]


def streaming(fn: F) -> F:
    """Like `unary`, for handlers that yield responses."""

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            check_fields(request)
            yield from fn(self, request, context)
        except Exception as exc:
            if _passes_through(exc):
                raise
            abort(context, exc)

    return wrapper  # type: ignore[return-value]
