"""Random ModelInferRequests against a real server: a wrong one is refused, never INTERNAL or UNKNOWN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ceal.oip import grpc_predict_v2_pb2 as pb
from ceal.oip import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.support.server import in_process

CLEAN = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}

_param = st.one_of(
    st.builds(lambda v: pb.InferParameter(bool_param=v), st.booleans()),
    st.builds(lambda v: pb.InferParameter(int64_param=v), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: pb.InferParameter(uint64_param=v), st.integers(0, 2**64 - 1)),
    st.builds(lambda v: pb.InferParameter(double_param=v), st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda v: pb.InferParameter(string_param=v), st.text(max_size=8)),
)


@st.composite
def requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(
        model_name=draw(st.sampled_from(["lesion", "", "other"])),
        model_version=draw(st.sampled_from(["", "1", "2", "x", "²", "-1"])),
    )
    for _ in range(draw(st.integers(0, 2))):
        tensor = request.inputs.add(
            name=draw(st.sampled_from(["image", "pixels"])),
            datatype=draw(st.sampled_from(["UINT8", "UINT16", "FP32", "FP16", "BYTES", ""])),
            shape=draw(st.lists(st.integers(-3, 40), max_size=4)),
        )
        if draw(st.booleans()):
            tensor.contents.uint_contents.extend(draw(st.lists(st.integers(0, 2**32 - 1), max_size=64)))
            tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=64)))
    if draw(st.booleans()):
        request.raw_input_contents.append(draw(st.binary(max_size=2048)))
    for name in draw(
        st.lists(st.sampled_from(["samples", "seed", "adaptive_tolerance", "threshold", "zzz"]), max_size=3)
    ):
        request.parameters[name].CopyFrom(draw(_param))
    for name in draw(st.lists(st.sampled_from(["probability", "score", "logits"]), max_size=2)):
        request.outputs.add(name=name)
    return request


@pytest.fixture(scope="module")
def stub(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with (
        in_process(models_dir, tmp_path_factory.mktemp("oip-fuzz") / "state", default_samples=2, max_samples=4) as s,
        grpc.insecure_channel(f"127.0.0.1:{s.port}") as channel,
    ):
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(request=requests())
def test_random_requests_never_crash_the_call(
    stub: pb_grpc.GRPCInferenceServiceStub, request: pb.ModelInferRequest
) -> None:
    try:
        stub.ModelInfer(request, timeout=60)
        code = grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()  # type: ignore[attr-defined]
    assert code in CLEAN, (code, request)
