"""OpenTelemetry for the server: providers, exporters chosen by configuration, and the instruments.

`--otel none` (the default) builds nothing: no tracer or meter provider, no interceptor, and the core's
hooks (`spans.child_span`, `spans.record_run`) stay no-ops. Otherwise `Telemetry` owns its own providers
(the process-wide OpenTelemetry globals are never set, so two servers in one process don't mix):

    console     spans and metrics printed to stdout (development)
    otlp        spans and metrics to an OpenTelemetry collector over gRPC (endpoint host:port, default
                localhost:4317; an https:// endpoint uses TLS)
    prometheus  metrics on an HTTP /metrics endpoint (listen host:port, default 127.0.0.1:9464); no spans

Instruments (semantic conventions v1.44.0, see tracing.py): rpc.server.call.duration (seconds, by method and
status code; its count is the request count), ceal.engine.batch_size,
ceal.engine.queue_depth, ceal.engine.mc_samples and ceal.engine.mc_samples_per_second, ceal.pool.images.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import grpc
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from ceal.service.middleware.spans import CallTelemetry

SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"  # the one semantic-conventions version (tracing.py)

__all__ = ["EXPORTERS", "Telemetry", "TelemetryConfig", "TelemetryError"]

log = logging.getLogger(__name__)

EXPORTERS = ("none", "console", "otlp", "prometheus")
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class TelemetryError(ValueError):
    """The telemetry configuration cannot be served; the message says what to change or install."""


@dataclass(frozen=True)
class TelemetryConfig:
    exporter: str = "none"  # one of EXPORTERS
    endpoint: str = ""  # otlp: collector host:port; prometheus: listen host:port
    service_name: str = "ceal"
    metric_interval: float = 10.0  # seconds between metric exports (console, otlp)

    def __post_init__(self) -> None:
        if self.exporter not in EXPORTERS:
            raise TelemetryError(f"telemetry exporter {self.exporter!r} is not known; use one of {list(EXPORTERS)}")


class Telemetry:
    """Tracer and meter providers for one server, the instruments, and what to close at shutdown."""

    def __init__(
        self,
        *,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
        service_name: str = "ceal",
        on_shutdown: Iterable[Callable[[], object]] = (),
    ) -> None:
        # service.instance.id: the pod's name in Kubernetes, so each replica's gauges stay their own series
        resource = Resource.create({"service.name": service_name, "service.instance.id": socket.gethostname()})
        self.tracer_provider: TracerProvider | None = None
        if span_processors:
            self.tracer_provider = TracerProvider(resource=resource)
            for processor in span_processors:
                self.tracer_provider.add_span_processor(processor)
            self.tracer: trace.Tracer = self.tracer_provider.get_tracer("ceal.service", schema_url=SCHEMA_URL)
        else:
            self.tracer = trace.NoOpTracer()
        self.meter_provider = MeterProvider(resource=resource, metric_readers=list(metric_readers))
        meter = self.meter_provider.get_meter("ceal.service", schema_url=SCHEMA_URL)
        self.duration = meter.create_histogram(
            "rpc.server.call.duration",
            "s",
            "Measures the duration of an incoming Remote Procedure Call (RPC).",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.call = CallTelemetry(
            tracer=self.tracer,
            batch_size=meter.create_histogram(
                "ceal.engine.batch_size",
                "{image}",
                "images per engine run",
                explicit_bucket_boundaries_advisory=_BATCH_BUCKETS,
            ),
            mc_samples=meter.create_counter("ceal.engine.mc_samples", "{sample}", "Monte-Carlo samples drawn"),
            mc_rate=meter.create_histogram(
                "ceal.engine.mc_samples_per_second", "{sample}/s", "Monte-Carlo samples per second of one image's run"
            ),
        )
        self._meter = meter
        self._on_shutdown = list(on_shutdown)

    @classmethod
    def from_config(cls, config: TelemetryConfig) -> Telemetry | None:
        """The configured exporters; None for `none` (nothing is built at all)."""
        if config.exporter == "none":
            return None
        if config.exporter == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            # sys.stdout as it is now (the exporters' default is the one at their import)
            return cls._exporting(config, ConsoleSpanExporter(out=sys.stdout), ConsoleMetricExporter(out=sys.stdout))
        if config.exporter == "otlp":
            return cls._exporting(config, *_otlp_exporters(config.endpoint or "localhost:4317"))
        return cls._prometheus(config)

    @classmethod
    def _exporting(cls, config: TelemetryConfig, spans: SpanExporter, metrics: object) -> Telemetry:
        reader = PeriodicExportingMetricReader(metrics, export_interval_millis=config.metric_interval * 1000)  # type: ignore[arg-type]
        log.info("telemetry: %s exporter%s", config.exporter, f" to {config.endpoint}" if config.endpoint else "")
        return cls(
            span_processors=[BatchSpanProcessor(spans)], metric_readers=[reader], service_name=config.service_name
        )

    @classmethod
    def _prometheus(cls, config: TelemetryConfig) -> Telemetry:
        try:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError as exc:
            raise TelemetryError("--otel prometheus needs opentelemetry-exporter-prometheus; pip install it") from exc

        host, _, port = (config.endpoint or "127.0.0.1:9464").rpartition(":")
        registry = CollectorRegistry()
        httpd, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)
        telemetry = cls(
            metric_readers=[PrometheusMetricReader(registry=registry)],
            service_name=config.service_name,
            on_shutdown=[httpd.shutdown, httpd.server_close],
        )
        telemetry.prometheus_port = int(httpd.server_port)
        log.info("telemetry: Prometheus metrics on http://%s:%d/metrics", host or "127.0.0.1", httpd.server_port)
        return telemetry

    prometheus_port: int | None = None

    def interceptor(self) -> grpc.ServerInterceptor:
        from ceal.service.middleware.tracing import TelemetryInterceptor

        return TelemetryInterceptor(self)

    def observe(self, queue_depth: Callable[[], int], pool_sizes: Callable[[], dict[str, int]]) -> None:
        """Gauges read at each metric collection: the batcher's queue depth and each pool's image count."""

        def depth(_options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(queue_depth())

        def pools(_options: CallbackOptions) -> Iterable[Observation]:
            try:
                sizes = pool_sizes()
            except Exception:  # a store hiccup must not break metric export
                log.warning("pool size gauge: the store could not be read", exc_info=True)
                return
            for pool, images in sorted(sizes.items()):
                yield Observation(images, {"ceal.pool": pool})

        self._meter.create_observable_gauge("ceal.engine.queue_depth", [depth], "{request}", "requests waiting")
        self._meter.create_observable_gauge("ceal.pool.images", [pools], "{image}", "images registered per pool")

    def shutdown(self) -> None:
        """Flush and stop exporters (spans and metrics still buffered are sent)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        for close in self._on_shutdown:
            close()


def _otlp_exporters(endpoint: str) -> tuple[SpanExporter, object]:
    try:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TelemetryError("--otel otlp needs opentelemetry-exporter-otlp-proto-grpc; pip install it") from exc
    insecure = not endpoint.startswith("https://")
    spans = OTLPSpanExporter(endpoint=endpoint, insecure=insecure)
    return spans, OTLPMetricExporter(endpoint=endpoint, insecure=insecure)
