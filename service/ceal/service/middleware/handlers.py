"""Run code around every gRPC call, whatever the method's arity, and read the status it ended with.

gRPC's server interceptors see a method *handler*, not a call; `around_calls` rebuilds the handler so that
an observer's `unary` runs around each unary-response call and its `streaming` around each response stream
(the whole stream: the observer's generator is what gRPC iterates). Both run on the call's own thread, so
context variables they set (the current span, say) are visible to the servicer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

__all__ = ["CallObserver", "around_calls", "behavior_of", "final_code", "method_parts", "rebuild", "reject"]

Behavior = Callable[[Any, grpc.ServicerContext], Any]


class CallObserver(Protocol):
    """What an interceptor does around one call. `call()` runs the servicer; `request` is the decoded
    request message (for request-streaming methods, the request iterator)."""

    def unary(self, call: Callable[[], Any], request: Any, context: grpc.ServicerContext) -> Any: ...

    def streaming(
        self, call: Callable[[], Iterator[Any]], request: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]: ...


def method_parts(method: str) -> tuple[str, str]:
    """'/ceal.v1.Segmentation/Predict' → ('ceal.v1.Segmentation', 'Predict')."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    """The servicer function a handler calls, whatever its arity."""
    for attr in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        fn = getattr(handler, attr)
        if fn is not None:
            return fn  # type: ignore[no-any-return]
    raise ValueError("the method handler has no behaviour")  # pragma: no cover - gRPC always sets one


def rebuild(handler: grpc.RpcMethodHandler, behavior: Behavior, *, decode: bool = True) -> grpc.RpcMethodHandler:
    """A handler of the same arity and serializers calling `behavior`; `decode=False` passes raw bytes."""
    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
    # Without a deserializer the request stays raw bytes: a rejected call never parses what it sent.
    return make(  # type: ignore[no-any-return]
        behavior,
        request_deserializer=handler.request_deserializer if decode else None,
        response_serializer=handler.response_serializer,
    )


def around_calls(handler: grpc.RpcMethodHandler, observer: CallObserver) -> grpc.RpcMethodHandler:
    """The same method, with `observer` around each call."""
    inner = behavior_of(handler)
    if handler.response_streaming:

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            return observer.streaming(lambda: inner(request, context), request, context)

        return rebuild(handler, stream)

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        return observer.unary(lambda: inner(request, context), request, context)

    return rebuild(handler, unary)


def reject(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same arity that fails every call with `code`, without decoding the request."""

    def deny(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    def deny_stream(_request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        context.abort(code, message)
        yield  # pragma: no cover - abort raises; the yield makes this a generator

    return rebuild(handler, deny_stream if handler.response_streaming else deny, decode=False)


def final_code(context: grpc.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: the one the servicer set or aborted with, else what gRPC will send."""
    code = context.code()  # type: ignore[attr-defined]
    if isinstance(code, grpc.StatusCode):
        return code
    if error is not None:
        return grpc.StatusCode.UNKNOWN  # gRPC's answer to an exception the servicer did not map
    if not context.is_active():
        return grpc.StatusCode.DEADLINE_EXCEEDED if context.time_remaining() <= 0 else grpc.StatusCode.CANCELLED
    return grpc.StatusCode.OK
