"""The telemetry interceptor: a server span per call, the call-duration metric, W3C trace context from the caller.

One version of the OpenTelemetry semantic conventions, for spans and metrics alike: **v1.44.0** (schema
https://opentelemetry.io/schemas/1.44.0, the version opentelemetry-semantic-conventions 0.66b2 carries), RPC and
gRPC conventions:

- span name `ceal.v1.Segmentation/Predict`, kind SERVER, a child of the caller's span when the call carries a
  `traceparent` header; attributes `rpc.system.name` = "grpc", `rpc.method` = the fully-qualified method
  (the same string), `rpc.response.status_code` = the status name ("OK", "INVALID_ARGUMENT", …);
- span status ERROR (and `error.type` = the status name) only for the codes the gRPC convention counts as
  server errors: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. A caller's
  mistake (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, …) leaves the status unset;
- metric `rpc.server.call.duration`, histogram in seconds, with the same attributes (the request count is its
  count; there is no separate counter in the conventions).

Health checks, reflection and the Open Inference liveness/readiness probes are measured but get no span (probes
would drown the traces).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ceal.service.middleware import spans
from ceal.service.middleware.handlers import around_calls, final_code, method_parts

if TYPE_CHECKING:
    from ceal.service.middleware.telemetry import Telemetry

__all__ = ["SERVER_ERROR_CODES", "UNTRACED_METHODS", "UNTRACED_SERVICES", "TelemetryInterceptor"]

UNTRACED_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
UNTRACED_METHODS = ("inference.GRPCInferenceService/ServerLive", "inference.GRPCInferenceService/ServerReady")
# gRPC semantic conventions: the status codes that make a *server* span an error.
SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_PROPAGATOR = TraceContextTextMapPropagator()
_END = object()


class _Call:
    """Observes one call: span (unless untraced), metrics, the call's telemetry made current."""

    def __init__(self, telemetry: Telemetry, method: str, metadata: dict[str, str]) -> None:
        self.telemetry = telemetry
        self.service, self.name = method_parts(method)
        self.method = f"{self.service}/{self.name}"
        self.traced = self.service not in UNTRACED_SERVICES and self.method not in UNTRACED_METHODS
        self.parent = _PROPAGATOR.extract(metadata) if self.traced else None

    def _span(self) -> trace.Span:
        if not self.traced:
            return trace.INVALID_SPAN
        return self.telemetry.tracer.start_span(
            self.method,
            context=self.parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system.name": "grpc", "rpc.method": self.method},
        )

    def _finish(
        self, span: trace.Span, started: float, context: grpc.ServicerContext, error: BaseException | None
    ) -> None:
        code = final_code(context, error)
        attributes = {"rpc.system.name": "grpc", "rpc.method": self.method, "rpc.response.status_code": code.name}
        if code in SERVER_ERROR_CODES:
            attributes["error.type"] = code.name
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.set_attributes(attributes)
        span.end()
        self.telemetry.duration.record(time.perf_counter() - started, attributes)

    @contextlib.contextmanager
    def _current(self, span: trace.Span) -> Iterator[None]:
        # The status is ours to set (from the gRPC code, in _finish): an abort passing through is no error by itself.
        current = trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)
        with current, spans.active(self.telemetry.call):
            yield

    def unary(self, call: Callable[[], Any], _request: Any, context: grpc.ServicerContext) -> Any:
        started, span, error = time.perf_counter(), self._span(), None
        try:
            with self._current(span):
                return call()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._finish(span, started, context, error)

    def streaming(
        self, call: Callable[[], Iterator[Any]], _request: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        # The span is made current only while the servicer's code runs (each step of its iterator), never
        # across a yield: a stream the client abandons may be closed later from another thread.
        started, span, error = time.perf_counter(), self._span(), None
        responses: Iterator[Any] | None = None
        try:
            with self._current(span):
                responses = iter(call())
            while True:
                with self._current(span):
                    response = next(responses, _END)
                if response is _END:
                    return
                yield response
        except GeneratorExit:  # the client went away mid-stream: close the servicer's stream now, here
            close = getattr(responses, "close", None)
            if close is not None:
                with self._current(span):
                    close()
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._finish(span, started, context, error)


class TelemetryInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        metadata = {m.key: m.value for m in details.invocation_metadata or () if isinstance(m.value, str)}
        return around_calls(handler, _Call(self.telemetry, details.method, metadata))
