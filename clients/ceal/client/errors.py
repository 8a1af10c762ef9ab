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

Each is raised `from` the original grpc.RpcError, whose `.code()` and `.details()` stay reachable.
"""

from __future__ import annotations

import grpc


class CealError(Exception):
    """Base class; `code` is the gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN


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
    return exc
