"""The SDK's exception tree, mapped from gRPC status codes in one place (`from_rpc_error`).

CealError
├── InvalidArgument     INVALID_ARGUMENT: the request is wrong; the message says what to change
├── NotFound            NOT_FOUND: no such model, version, pool or image
├── AlreadyExists       ALREADY_EXISTS: an idempotency key was reused with other content
├── Overloaded          RESOURCE_EXHAUSTED: the server's queue is full; back off and retry
├── MessageTooLarge     RESOURCE_EXHAUSTED "message larger than max": a retry cannot succeed; ask for less
├── DeadlineExceeded    DEADLINE_EXCEEDED
├── Unauthenticated     UNAUTHENTICATED
├── PermissionDenied    PERMISSION_DENIED
├── Unimplemented       UNIMPLEMENTED: the server does not offer this call
├── Unavailable         UNAVAILABLE: the server is down or restarting (retried automatically first)
└── ServerError         anything else (INTERNAL, UNKNOWN, ...)

Each is raised `from` the original grpc.RpcError, whose `.code()` and `.details()` stay reachable. The
server's google.rpc rich error details are decoded onto the exception:

    reason            ErrorInfo.reason, a word to switch on ("INVALID_IMAGE", "MODEL_NOT_FOUND", "LEASE_HELD",
                      "OVERLOADED", "WRITE_CONFLICT", "STORE_DAMAGED", …); "" when the server sent none
    domain            ErrorInfo.domain ("ceal.v1")
    field_violations  BadRequest: ((field path, description), …), e.g. (("image", "image shape …"),)
    retry_after       RetryInfo.retry_delay in seconds (RESOURCE_EXHAUSTED), else None
    status            the whole google.rpc.Status, or None
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class CealError(Exception):
    """Base class; `code` is the gRPC status code, the other attributes the server's rich details."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    reason: str = ""
    domain: str = ""
    field_violations: tuple[tuple[str, str], ...] = ()
    retry_after: float | None = None
    status: status_pb2.Status | None = None


class InvalidArgument(CealError, ValueError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(CealError, LookupError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(CealError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Overloaded(CealError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class MessageTooLarge(CealError, ValueError):
    """A request or response exceeded a gRPC message limit: the same call will fail again. Ask for fewer
    maps, float16 maps or a smaller image, or raise the limit (the server's --max-message-bytes)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


# gRPC's own wording when a message exceeds max_send/max_receive_message_length (C core and Python).
_TOO_LARGE_MARKERS = ("larger than max", "message too large", "exceeds maximum")


class DeadlineExceeded(CealError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(CealError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(CealError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unimplemented(CealError, NotImplementedError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Unavailable(CealError, ConnectionError):
    code = grpc.StatusCode.UNAVAILABLE


class ServerError(CealError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[CealError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        Overloaded,
        DeadlineExceeded,
        Unauthenticated,
        PermissionDenied,
        Unimplemented,
        Unavailable,
    )
}


def from_rpc_error(err: grpc.RpcError) -> CealError:
    """The SDK exception for a failed call (raise it `from err`)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    cls = _BY_CODE.get(code, ServerError)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and any(m in (details or "").lower() for m in _TOO_LARGE_MARKERS):
        cls = MessageTooLarge  # not Overloaded: retrying the same message can never succeed
    exc = cls(f"{details} [{code.name}]")
    exc.code = code
    _decode_details(err, exc)
    return exc


def _decode_details(err: grpc.RpcError, exc: CealError) -> None:
    """Copy the google.rpc details of `err` (if it carries any we can read) onto `exc`."""
    try:
        status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None  # type: ignore[arg-type]
    except ValueError:  # details whose code or message disagree with the call's: ignore them
        status = None
    if status is None:
        return
    exc.status = status
    for packed in status.details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            exc.reason, exc.domain = info.reason, info.domain
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            exc.field_violations += tuple((v.field, v.description) for v in bad.field_violations)
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            packed.Unpack(retry)
            exc.retry_after = retry.retry_delay.ToNanoseconds() / 1e9
