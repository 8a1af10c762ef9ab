"""OpenTelemetry over real gRPC: a span per call with child spans, W3C trace context from the SDK, metrics,
exporters chosen by configuration, and nothing at all when it is off."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ceal.client import requests
from ceal.client.channel import ChannelSettings
from ceal.service.middleware import spans
from ceal.service.middleware.decoding import DecodeInterceptor
from ceal.service.middleware.telemetry import Telemetry, TelemetryConfig
from ceal.service.server import Running, ServerConfig, _interceptors
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from tests.integration.hardening.conftest import WAIT, wait_until
from tests.support.server import in_process

PREDICT = "ceal.v1.Segmentation/Predict"


class Traced:
    def __init__(self, running: Running, exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.running, self.exporter, self.reader = running, exporter, reader
        self.channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        self.seg = seg_grpc.SegmentationStub(self.channel)
        self.pool = al_grpc.ActiveLearningStub(self.channel)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def server_span(self, method: str) -> ReadableSpan:
        (span,) = [s for s in self.spans() if s.name == method]
        return span

    def children(self, parent: ReadableSpan) -> dict[str, ReadableSpan]:
        assert parent.context is not None
        return {s.name: s for s in self.spans() if s.parent is not None and s.parent.span_id == parent.context.span_id}

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            m.name: list(m.data.data_points)
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }


@pytest.fixture
def traced(models_dir: Path, tmp_path: Path) -> Iterator[Traced]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = Telemetry(span_processors=[SimpleSpanProcessor(exporter)], metric_readers=[reader])
    with in_process(models_dir, tmp_path / "state", telemetry=telemetry, max_queue_delay=0.0) as running:
        t = Traced(running, exporter, reader)
        with t.channel:
            yield t


def test_predict_gets_a_server_span_with_decode_queue_inference_and_scoring(traced: Traced, image: np.ndarray) -> None:
    traced.seg.Predict(requests.predict_request(image, samples=6), timeout=WAIT)
    span = traced.server_span(PREDICT)
    assert span.kind == trace.SpanKind.SERVER
    assert span.attributes is not None and span.attributes["rpc.response.status_code"] == "OK"
    assert span.attributes["rpc.system.name"] == "grpc" and span.attributes["rpc.method"] == PREDICT
    assert "error.type" not in span.attributes and span.status.status_code == trace.StatusCode.UNSET
    children = traced.children(span)
    assert set(children) == {"decode", "queue", "inference", "scoring"}
    queue, inference = children["queue"], children["inference"]
    assert queue.end_time is not None and inference.start_time is not None
    assert queue.end_time <= inference.start_time
    assert inference.attributes is not None and inference.attributes["ceal.samples"] == 6
    assert inference.attributes["ceal.batch_size"] == 1
    for child in children.values():  # children lie inside their call
        assert span.start_time <= child.start_time and child.end_time <= span.end_time  # type: ignore[operator]


def test_failed_call_span_and_metrics_carry_its_status_code(traced: Traced, image: np.ndarray) -> None:
    with pytest.raises(grpc.RpcError):
        traced.seg.Predict(requests.predict_request(image, samples=10_000), timeout=WAIT)
    traced.seg.ListModels(seg_pb.ListModelsRequest(), timeout=WAIT)
    span = traced.server_span(PREDICT)
    assert span.attributes is not None and span.attributes["rpc.response.status_code"] == "INVALID_ARGUMENT"
    # the caller's mistake, not the server's: the gRPC conventions leave a server span's status unset
    assert span.status.status_code == trace.StatusCode.UNSET and "error.type" not in span.attributes
    metrics = traced.metrics()
    counts = {
        (p.attributes["rpc.method"], p.attributes["rpc.response.status_code"]): p.count
        for p in metrics["rpc.server.call.duration"]
    }
    assert counts == {(PREDICT, "INVALID_ARGUMENT"): 1, ("ceal.v1.Segmentation/ListModels", "OK"): 1}
    latency = {p.attributes["rpc.method"]: p for p in metrics["rpc.server.call.duration"]}
    assert latency[PREDICT].count == 1 and 0 < latency[PREDICT].sum < 60  # seconds
    assert {"rpc.server.duration", "rpc.server.requests"}.isdisjoint(metrics)  # no second convention


def test_only_server_error_codes_mark_the_span_as_error(traced: Traced) -> None:
    """DATA_LOSS (a damaged store) is an error by the gRPC conventions; the span says so, with error.type."""
    from ceal.service.store.errors import StoreDamaged

    def damaged(*_args: object, **_kwargs: object) -> object:
        raise StoreDamaged("a stored array could not be decoded: the database file is damaged")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(traced.running.active_learning.store, "counts", damaged)
        with pytest.raises(grpc.RpcError) as raised:
            traced.pool.GetPoolStats(al_pb.GetPoolStatsRequest(pool="p"), timeout=WAIT)
    assert raised.value.code() == grpc.StatusCode.DATA_LOSS  # type: ignore[attr-defined]
    span = traced.server_span("ceal.v1.ActiveLearning/GetPoolStats")
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "DATA_LOSS"


def test_sdk_calls_join_the_callers_trace(traced: Traced, image: np.ndarray) -> None:
    client_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(client_spans))
    settings = ChannelSettings("127.0.0.1")
    with provider.get_tracer("annotation-app").start_as_current_span("review case") as caller:
        metadata = settings.metadata()  # what the SDK sends with each call
        traced.seg.Predict(requests.predict_request(image, samples=2), timeout=WAIT, metadata=metadata)
    assert dict(metadata)["traceparent"].startswith("00-")
    span = traced.server_span(PREDICT)
    assert span.context is not None and span.parent is not None
    assert span.context.trace_id == caller.get_span_context().trace_id
    assert span.parent.span_id == caller.get_span_context().span_id
    assert settings.metadata() == ()  # no current span, no header


def test_pool_calls_have_store_spans_and_engine_metrics(traced: Traced) -> None:
    images = [requests.pool_image_message(np.full((48, 64), 30 * i, np.uint8)) for i in range(3)]
    reply = traced.pool.RegisterImages(al_pb.RegisterImagesRequest(pool="p1", images=images), timeout=WAIT)
    list(traced.pool.ScorePool(al_pb.ScorePoolRequest(pool="p1", samples=5), timeout=WAIT))
    label = requests.submit_label_request(
        reply.images[0].image_id,
        np.zeros((48, 64), np.uint8),
        pool="p1",
        annotator="a",
        source="human",
        seconds_spent=1.0,
        idempotency_key=None,
    )
    traced.pool.SubmitLabel(label, timeout=WAIT)
    assert set(traced.children(traced.server_span("ceal.v1.ActiveLearning/RegisterImages"))) == {"decode", "store"}
    assert set(traced.children(traced.server_span("ceal.v1.ActiveLearning/SubmitLabel"))) == {"store"}
    score = [
        s.name
        for s in traced.spans()
        if s.parent is not None
        and s.parent.span_id == traced.server_span("ceal.v1.ActiveLearning/ScorePool").context.span_id
    ]  # type: ignore[union-attr]
    assert sorted(set(score)) == ["inference", "queue", "scoring", "store"] and score.count("inference") == 3
    metrics = traced.metrics()
    assert sum(p.count for p in metrics["ceal.engine.batch_size"]) == 3
    assert sum(p.value for p in metrics["ceal.engine.mc_samples"]) == 15
    assert all(p.min > 0 for p in metrics["ceal.engine.mc_samples_per_second"])
    assert [(p.attributes["ceal.pool"], p.value) for p in metrics["ceal.pool.images"]] == [("p1", 3)]
    assert [p.value for p in metrics["ceal.engine.queue_depth"]] == [0]


def test_off_builds_nothing_and_the_hooks_are_no_ops(server: Running, image: np.ndarray) -> None:
    assert Telemetry.from_config(TelemetryConfig()) is None
    assert server.telemetry is None and [type(i) for i in _interceptors(ServerConfig(Path("models")), None)] == [
        DecodeInterceptor
    ]
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # no global provider was set
    assert spans.child_span("decode") is spans.child_span("store")  # one shared no-op context manager
    seen: list[object] = []
    real_record = spans.record_run

    def spy(timing: object) -> None:
        seen.append(spans._ACTIVE.get())
        real_record(timing)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        mp.setattr("ceal.service.engine.core.record_run", spy)
        seg_grpc.SegmentationStub(channel).Predict(requests.predict_request(image, samples=2), timeout=WAIT)
    assert seen == [None]  # the engine ran with no call telemetry in context


def test_unknown_exporter_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"none.*console.*otlp.*prometheus"):
        TelemetryConfig(exporter="jaeger")


def test_prometheus_exporter_serves_metrics(models_dir: Path) -> None:
    with in_process(models_dir, otel="prometheus", otel_endpoint="127.0.0.1:0") as running:
        assert running.telemetry is not None and running.telemetry.prometheus_port
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            seg_grpc.SegmentationStub(channel).ListModels(seg_pb.ListModelsRequest(), timeout=WAIT)
        url = f"http://127.0.0.1:{running.telemetry.prometheus_port}/metrics"
        with urllib.request.urlopen(url, timeout=WAIT) as reply:  # loopback only
            text = reply.read().decode()
    lines = [line for line in text.splitlines() if line.startswith("rpc_server_call_duration_seconds_count")]
    assert any(
        'rpc_method="ceal.v1.Segmentation/ListModels"' in line and 'rpc_response_status_code="OK"' in line
        for line in lines
    ), text[:2000]
    assert any(line.startswith("ceal_engine_queue_depth") for line in text.splitlines())  # what the HPA scales on


class _Collector(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    """A stand-in OpenTelemetry collector on 127.0.0.1: keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[str] = []
        self.metrics: list[str] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.spans += [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
                return trace_service_pb2.ExportTraceServiceResponse()
            self.metrics += [m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
            return metrics_service_pb2.ExportMetricsServiceResponse()


def test_otlp_exporter_sends_spans_and_metrics_to_the_collector(models_dir: Path) -> None:
    collector = _Collector()
    sink = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, sink)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, sink)
    port = sink.add_insecure_port("127.0.0.1:0")
    sink.start()
    try:
        with (
            in_process(models_dir, otel="otlp", otel_endpoint=f"127.0.0.1:{port}") as running,
            grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        ):
            seg_grpc.SegmentationStub(channel).ListModels(seg_pb.ListModelsRequest(), timeout=WAIT)
        # stopping the server flushed its exporters
        assert collector.spans == ["ceal.v1.Segmentation/ListModels"]
        assert "rpc.server.call.duration" in set(collector.metrics)
    finally:
        sink.stop(None)


def test_console_exporter_prints_spans(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with in_process(models_dir, otel="console") as running, grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        seg_grpc.SegmentationStub(ch).ListModels(seg_pb.ListModelsRequest(), timeout=WAIT)
    assert '"name": "ceal.v1.Segmentation/ListModels"' in capsys.readouterr().out


def test_abandoned_stream_ends_its_span_as_cancelled(traced: Traced) -> None:
    images = [requests.pool_image_message(np.full((48, 64), 9 * i, np.uint8)) for i in range(12)]
    traced.pool.RegisterImages(al_pb.RegisterImagesRequest(pool="p2", images=images), timeout=WAIT)
    stream = traced.pool.ScorePool(al_pb.ScorePoolRequest(pool="p2", samples=4), timeout=WAIT)
    assert next(stream).total == 12
    stream.cancel()  # the client walks away after the first progress message
    method = "ceal.v1.ActiveLearning/ScorePool"
    wait_until(lambda: any(s.name == method for s in traced.spans()), "the abandoned call's span to end")
    span = traced.server_span(method)
    assert span.attributes is not None and span.attributes["rpc.response.status_code"] == "CANCELLED"
    # and the server goes on serving, with telemetry
    traced.seg.ListModels(seg_pb.ListModelsRequest(), timeout=WAIT)
    assert traced.server_span("ceal.v1.Segmentation/ListModels").attributes["rpc.response.status_code"] == "OK"  # type: ignore[index]
