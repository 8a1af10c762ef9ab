"""Request bytes are parsed by the server's own code, so bytes that are not a message get INVALID_ARGUMENT.

gRPC's built-in request deserialization answers INTERNAL to undecodable bytes, and (grpcio 1.85) one
undecodable message on a request *stream* leaves the call unfinished inside gRPC, so `server.stop()` never
returns and SIGTERM cannot drain. This interceptor takes decoding over for every method: the handler gets
raw bytes from gRPC and parses them itself, aborting the call with INVALID_ARGUMENT when they do not parse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from ceal.service.errors import InvalidInput
from ceal.service.middleware.handlers import behavior_of, method_parts, rebuild
from ceal.service.servicers.status import abort

__all__ = ["DecodeInterceptor"]


def _parser(decode: Callable[[bytes], Any], what: str) -> Callable[[bytes, grpc.ServicerContext, int], Any]:
    def parse(raw: bytes, context: grpc.ServicerContext, index: int) -> Any:
        try:
            return decode(raw)
        except Exception:  # protobuf raises DecodeError, or others on odd input: all mean "not a message"
            message = f"request message {index} is not a valid {what}; send it serialized from its proto (proto/ceal/)"
            abort(context, InvalidInput(message, reason="MALFORMED_REQUEST"))

    return parse


class DecodeInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        service, name = method_parts(details.method)
        parse = _parser(handler.request_deserializer, f"{service}.{name} request")
        inner = behavior_of(handler)
        if handler.request_streaming:

            def streamed(raw_requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
                return inner((parse(raw, context, i) for i, raw in enumerate(raw_requests)), context)

            return rebuild(handler, streamed, decode=False)

        def single(raw: bytes, context: grpc.ServicerContext) -> Any:
            return inner(parse(raw, context, 0), context)

        return rebuild(handler, single, decode=False)
