"""The telemetry interceptor: a server span per call, request metrics, W3C trace context from the caller.

The span is named after the method (`ceal.v1.Segmentation/Predict`, as the gRPC semantic conventions
say), is a child of the caller's span when the call carries a `traceparent` header, and records the status
code the call ended with. Health checks and reflection are counted in the metrics but get no span (probes
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

__all__ = ["UNTRACED_SERVICES", "TelemetryInterceptor"]

UNTRACED_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
_PROPAGATOR = TraceContextTextMapPropagator()
_END = object()


class _Call:
    """Observes one call: span (unless untraced), metrics, the call's telemetry made current."""

    def __init__(self, telemetry: Telemetry, method: str, metadata: dict[str, str]) -> None:
        self.telemetry = telemetry
        self.service, self.name = method_parts(method)
        self.method = f"{self.service}/{self.name}"
        self.traced = self.service not in UNTRACED_SERVICES
        self.parent = _PROPAGATOR.extract(metadata) if self.traced else None

    def _span(self) -> trace.Span:
        if not self.traced:
            return trace.INVALID_SPAN
        return self.telemetry.tracer.start_span(
            self.method,
            context=self.parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": self.service, "rpc.method": self.name},
        )

    def _finish(
        self, span: trace.Span, started: float, context: grpc.ServicerContext, error: BaseException | None
    ) -> None:
        code = final_code(context, error)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
        attributes = {"rpc.method": self.method, "rpc.grpc.status_code": code.name}
        self.telemetry.requests.add(1, attributes)
        self.telemetry.duration.record(time.perf_counter() - started, attributes)

    @contextlib.contextmanager
    def _current(self, span: trace.Span) -> Iterator[None]:
        with trace.use_span(span, end_on_exit=False), spans.active(self.telemetry.call):
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
