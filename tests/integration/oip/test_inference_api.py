"""inference.GRPCInferenceService on a real server, through ceal's own generated stub: typed contents, errors
with rich details, probes, auth, and bytes that are no message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from ceal.client.errors import CealError, from_rpc_error
from ceal.oip import grpc_predict_v2_pb2 as pb
from ceal.oip import grpc_predict_v2_pb2_grpc as pb_grpc
from ceal.service.server import Running
from tests.support.models import synth_dataset
from tests.support.server import in_process

IMAGE = synth_dataset(1, seed=5, height=50, width=70).images[0]  # (50, 70, 3) uint8


@pytest.fixture
def stub(address: str) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def _request(image: np.ndarray = IMAGE, *, raw: bool = True, **params: int | float) -> pb.ModelInferRequest:
    datatype = {np.dtype("uint8"): "UINT8", np.dtype("uint16"): "UINT16", np.dtype("float32"): "FP32"}[image.dtype]
    request = pb.ModelInferRequest(model_name="lesion")
    tensor = request.inputs.add(name="image", datatype=datatype, shape=list(image.shape))
    if raw:
        request.raw_input_contents.append(image.astype(image.dtype.newbyteorder("<")).tobytes())
    elif datatype == "FP32":
        tensor.contents.fp32_contents.extend(image.reshape(-1).tolist())
    else:
        tensor.contents.uint_contents.extend(image.reshape(-1).tolist())
    for name, value in params.items():
        if isinstance(value, float):
            request.parameters[name].double_param = value
        else:
            request.parameters[name].int64_param = value
    return request


def _outputs(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    dtypes = {"UINT8": "<u1", "FP32": "<f4", "FP64": "<f8"}
    out = {}
    for i, t in enumerate(response.outputs):
        if response.raw_output_contents:
            flat = np.frombuffer(response.raw_output_contents[i], dtype=dtypes[t.datatype])
        elif t.datatype == "UINT8":
            flat = np.asarray(t.contents.uint_contents, dtype=np.uint8)
        elif t.datatype == "FP32":
            flat = np.asarray(t.contents.fp32_contents, dtype=np.float32)
        else:
            flat = np.asarray(t.contents.fp64_contents, dtype=np.float64)
        out[t.name] = flat.reshape(tuple(t.shape))
    return out


def _error(stub: pb_grpc.GRPCInferenceServiceStub, request: pb.ModelInferRequest) -> CealError:
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request, timeout=30)
    return from_rpc_error(raised.value)  # type: ignore[arg-type]


def test_typed_contents_give_the_same_outputs_as_raw_bytes(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    raw = stub.ModelInfer(_request(samples=6, seed=9), timeout=60)
    typed = stub.ModelInfer(_request(raw=False, samples=6, seed=9), timeout=60)
    assert len(raw.raw_output_contents) == 6 and not typed.raw_output_contents  # answered in kind
    a, b = _outputs(raw), _outputs(typed)
    assert list(a) == ["probability", "label_map", "entropy", "mutual_information", "variance", "score"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["entropy"].shape == (50, 70) and a["label_map"].dtype == np.uint8
    assert raw.model_version == "1" and raw.parameters["samples"].int64_param == 6


def test_requested_outputs_only_and_in_order(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request = _request(samples=4, seed=1)
    request.outputs.add(name="score")
    request.outputs.add(name="variance")
    response = stub.ModelInfer(request, timeout=60)
    assert [t.name for t in response.outputs] == ["score", "variance"]
    assert [t.datatype for t in response.outputs] == ["FP64", "FP32"]


def test_uint16_and_grayscale_images(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    for image in (IMAGE.astype(np.uint16) * 257, IMAGE[..., 0]):
        got = _outputs(stub.ModelInfer(_request(image, samples=4, seed=2), timeout=60))
        assert got["label_map"].shape == image.shape[:2]


def test_adaptive_tolerance_parameter_stops_early(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    response = stub.ModelInfer(_request(samples=40, seed=3, adaptive_tolerance=1.0), timeout=60)
    assert response.parameters["samples"].int64_param < 40  # a loose tolerance is met long before T_max


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        (lambda r: setattr(r.inputs[0], "datatype", "INT64"), "INVALID_IMAGE", "inputs[0].datatype"),
        (lambda r: r.inputs[0].shape.extend([2]), "INVALID_IMAGE", "inputs[0].shape"),
        (lambda r: r.raw_input_contents.__setitem__(0, b"\x00" * 10), "INVALID_IMAGE", "raw_input_contents[0]"),
        (lambda r: setattr(r.inputs[0], "name", "pixels"), "INVALID_IMAGE", "inputs"),
        (lambda r: r.parameters["temperature"].CopyFrom(pb.InferParameter(double_param=2.0)), "INVALID_ARGUMENT",
         "parameters.temperature"),
        (lambda r: r.parameters["samples"].CopyFrom(pb.InferParameter(int64_param=0)), "INVALID_ARGUMENT",
         "parameters.samples"),
        (lambda r: r.parameters["samples"].CopyFrom(pb.InferParameter(int64_param=100_000)), "INVALID_ARGUMENT",
         "parameters"),
        (lambda r: r.outputs.add(name="logits"), "INVALID_ARGUMENT", "outputs"),
        (lambda r: setattr(r, "model_version", "latest"), "INVALID_ARGUMENT", "model_version"),
    ],
)  # fmt: skip
def test_bad_requests_name_the_field(
    stub: pb_grpc.GRPCInferenceServiceStub, change: object, reason: str, field: str
) -> None:
    request = _request(samples=4)
    change(request)  # type: ignore[operator]
    exc = _error(stub, request)
    assert exc.code == grpc.StatusCode.INVALID_ARGUMENT and (exc.reason, exc.domain) == (reason, "ceal.v1")
    assert [f for f, _ in exc.field_violations] == [field]


def test_unknown_model_and_version(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request = _request(samples=4)
    request.model_name = "nope"
    assert _error(stub, request).reason == "MODEL_NOT_FOUND"
    request.model_name, request.model_version = "lesion", "7"
    exc = _error(stub, request)
    assert exc.code == grpc.StatusCode.NOT_FOUND and exc.reason == "MODEL_NOT_FOUND"


def test_probes_and_metadata(stub: pb_grpc.GRPCInferenceServiceStub, server: Running) -> None:
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="lesion")).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="lesion", version="1")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="lesion", version="2")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="other")).ready
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="lesion"))
    assert (meta.name, list(meta.versions), meta.platform) == ("lesion", ["1"], "onnxruntime_onnx")
    assert [(t.name, list(t.shape)) for t in meta.inputs] == [("image", [-1, -1, 3])]
    server.inference.ready.clear()  # what shutdown does first
    assert not stub.ServerReady(pb.ServerReadyRequest()).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="lesion")).ready


def test_bytes_that_are_no_message_are_invalid_argument(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        for method in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods:
            call = channel.unary_unary(f"/inference.GRPCInferenceService/{method.name}")
            with pytest.raises(grpc.RpcError) as raised:
                call(b"\xff\xff\xff", timeout=30)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method.name  # type: ignore[attr-defined]


def test_tokens_guard_infer_but_not_the_probes(models_dir: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"viewer-app": {"token": "v", "role": "viewer"}}))
    with in_process(models_dir, tokens=tokens) as running, grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        assert stub.ServerLive(pb.ServerLiveRequest()).live and stub.ServerReady(pb.ServerReadyRequest()).ready
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(_request(samples=2), timeout=30)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        reply = stub.ModelInfer(_request(samples=2), timeout=60, metadata=(("authorization", "Bearer v"),))
        assert reply.outputs[0].name == "probability"


def test_model_infer_is_traced_like_predict_and_probes_are_not(models_dir: Path, tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ceal.service.middleware.telemetry import Telemetry

    exporter = InMemorySpanExporter()
    telemetry = Telemetry(span_processors=[SimpleSpanProcessor(exporter)])
    with (
        in_process(models_dir, telemetry=telemetry) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        stub.ServerLive(pb.ServerLiveRequest())
        stub.ServerReady(pb.ServerReadyRequest())
        stub.ModelInfer(_request(samples=3, seed=1), timeout=60)
    spans = exporter.get_finished_spans()
    (server,) = [s for s in spans if s.name == "inference.GRPCInferenceService/ModelInfer"]
    assert server.attributes is not None and server.attributes["rpc.response.status_code"] == "OK"
    assert server.attributes["rpc.method"] == "inference.GRPCInferenceService/ModelInfer"
    assert server.context is not None
    children = {s.name for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id}
    assert children == {"decode", "queue", "inference", "scoring"}
    assert not [s for s in spans if s.name.endswith(("/ServerLive", "/ServerReady"))]  # probes: no spans
