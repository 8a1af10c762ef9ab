"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any, TypeVar

import grpc

from ceal.service import errors
from ceal.service.servicers.fields import check_fields

log = logging.getLogger(__name__)

CODES: dict[type[Exception], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    CancelledError: grpc.StatusCode.CANCELLED,  # the caller cancelled; its queued work was skipped
}

F = TypeVar("F", bound=Callable[..., Any])


def code_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    for kind, code in CODES.items():
        if isinstance(exc, kind):
            return code, str(exc)
    if isinstance(exc, errors.ServiceError):  # e.g. a locked or damaged store: the caller may retry
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    log.exception("internal error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); the server log has the details"


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    code, message = code_for(exc)
    context.abort(code, message)


def unary(fn: F) -> F:
    """Wrap a unary handler `(self, request, context)`: the request's fields checked (`check_fields`), and
    domain errors become statuses."""

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            check_fields(request)
            return fn(self, request, context)
        except Exception as exc:
            if isinstance(exc, grpc.RpcError) or type(exc).__name__ == "_AbortException":
                raise
            _abort(context, exc)

    return wrapper  # type: ignore[return-value]


def streaming(fn: F) -> F:
    """Like `unary`, for handlers that yield responses."""

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            check_fields(request)
            yield from fn(self, request, context)
        except Exception as exc:
            if isinstance(exc, grpc.RpcError) or type(exc).__name__ == "_AbortException":
                raise
            _abort(context, exc)

    return wrapper  # type: ignore[return-value]
