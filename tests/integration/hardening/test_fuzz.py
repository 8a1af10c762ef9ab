"""Fuzzing a live server: random request messages to every method, random raw bytes through a channel with no
serializer, malformed PNG/JPEG/DICOM files, and the inputs the adversarial run of issue 21 found (overflowing
shapes, formats declared as others, DICOM slopes NaN/1e308, unknown enums, NaN floats). Every call gets a status,
the wrong ones a clean refusal such as INVALID_ARGUMENT (never INTERNAL or UNKNOWN), and the server is still
SERVING at the end (and can still stop: an undecodable stream message once left gRPC unable to). The last test
prints the run's size."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from ceal.v1 import active_learning_pb2, segmentation_pb2, tensor_pb2
from tests.integration.hardening.conftest import Method, ceal_methods, raw_call
from tests.integration.hardening.messages import messages
from tests.support.server import in_process

EXAMPLES = 100  # per method (typed), and per image format
RAW_EXAMPLES = 1000
# A wrong request may be refused in many ways; it may never crash the call (INTERNAL, UNKNOWN).
CLEAN = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
}
SENT: Counter[str] = Counter()
CODES: Counter[str] = Counter()
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
METHODS = ceal_methods()
_INPUTS = {
    f"/{s.full_name}/{m.name}": m.input_type
    for mod in (segmentation_pb2, active_learning_pb2)
    for s in mod.DESCRIPTOR.services_by_name.values()
    for m in s.methods
}


@pytest.fixture(scope="module")
def channel(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    # small T so the requests that are valid stay cheap; a small queue so overload is reachable too
    state = tmp_path_factory.mktemp("fuzz") / "state"
    with (
        in_process(models_dir, state, default_samples=2, max_samples=4, max_pixels=128 * 128) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch,
    ):
        yield ch


def _send(channel: grpc.Channel, method: Method, payload: bytes | list[bytes], kind: str) -> grpc.StatusCode:
    code: grpc.StatusCode = raw_call(channel, method, payload)
    SENT[kind] += 1
    CODES[code.name] += 1
    return code


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name.rpartition("/")[2])
def test_random_request_messages_get_clean_statuses(channel: grpc.Channel, method: Method) -> None:
    single = messages(_INPUTS[method.path])

    @FUZZ
    @given(st.lists(single, min_size=0, max_size=3) if method.client_streaming else single)
    def check(request: object) -> None:
        payload = (
            [m.SerializeToString() for m in request]
            if isinstance(request, list)  # type: ignore[attr-defined]
            else request.SerializeToString()
        )  # type: ignore[attr-defined]
        code = _send(channel, method, payload, "typed messages")
        assert code in CLEAN, f"{method.name} answered {code.name} to {request!r}"

    check()


@settings(max_examples=RAW_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=512))
def test_raw_bytes_to_every_method_get_clean_statuses(channel: grpc.Channel, method: Method, payload: bytes) -> None:
    code = _send(channel, method, payload, "raw bytes")
    # bytes that do not parse are INVALID_ARGUMENT; bytes that happen to parse are a request like any other
    assert code in CLEAN, f"{method.name} answered {code.name} to {payload!r}"


def _samples() -> dict[str, bytes]:
    pixels = (np.indices((40, 52)).sum(axis=0) * 3 % 256).astype(np.uint8)
    out = {}
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        PILImage.fromarray(pixels).save(buf, format=fmt)
        out[fmt] = buf.getvalue()
    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    out["DICOM"] = Path(path).read_bytes()
    return out


SAMPLES = _samples()
FORMATS = {
    "PNG": tensor_pb2.IMAGE_FORMAT_PNG,
    "JPEG": tensor_pb2.IMAGE_FORMAT_JPEG,
    "DICOM": tensor_pb2.IMAGE_FORMAT_DICOM,
}
PREDICT = next(m for m in METHODS if m.name == "ceal.v1.Segmentation/Predict")


def _predict_file(channel: grpc.Channel, data: bytes, fmt: str) -> grpc.StatusCode:
    image = tensor_pb2.Image(encoded=tensor_pb2.EncodedImage(data=data, format=FORMATS[fmt]))
    request = segmentation_pb2.PredictRequest(image=image, options=segmentation_pb2.PredictOptions(samples=1))
    return _send(channel, PREDICT, request.SerializeToString(), "malformed files")


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    """The file with bytes overwritten, cut short, or both."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data) - 1))]
    return bytes(data)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_damaged_image_files_are_invalid_argument_or_still_decode(channel: grpc.Channel, fmt: str) -> None:
    assert _predict_file(channel, SAMPLES[fmt], fmt) == grpc.StatusCode.OK  # the undamaged file is fine

    @FUZZ
    @given(damaged(SAMPLES[fmt]))
    def check(data: bytes) -> None:
        code = _predict_file(channel, data, fmt)
        assert code in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}, f"{fmt}: {code.name}"

    check()


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_malformed_image_files_are_invalid_argument(channel: grpc.Channel, fmt: str) -> None:
    data = SAMPLES[fmt]
    header = 140 if fmt == "DICOM" else 16
    broken = {
        "header only": data[:header],
        "cut in half": data[: len(data) // 2],
        "body garbage": data[:header] + bytes(range(256)) * 4,
        "empty": b"",
    }
    for what, payload in broken.items():
        code = _predict_file(channel, payload, fmt)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{fmt} {what}: {code.name}"


def _dicom_with(**raw: str) -> bytes:
    """The sample DICOM file with attributes overwritten by text (as a damaged file could carry them)."""
    import pydicom

    path = get_testdata_file("CT_small.dcm", download=False)
    ds = pydicom.dcmread(path)
    for keyword, value in raw.items():
        ds.add_new(pydicom.datadict.tag_for_keyword(keyword), "LO", value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    "attributes",
    [
        {"RescaleSlope": "abc"},
        {"RescaleSlope": "1e400"},
        {"WindowCenter": "a", "WindowWidth": "b"},
        {"WindowCenter": "0", "WindowWidth": "0"},
        {"NumberOfFrames": "x"},
        {"Rows": "60000"},
    ],
    ids="+".join,
)
def test_dicom_with_damaged_attributes_is_invalid_argument(channel: grpc.Channel, attributes: dict[str, str]) -> None:
    assert _predict_file(channel, _dicom_with(**attributes), "DICOM") == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_image_file_is_refused_from_its_header(channel: grpc.Channel) -> None:
    buf = io.BytesIO()
    PILImage.new("L", (3000, 3000)).save(buf, format="PNG")  # 9 Mpx of zeros: a few kB on the wire
    assert len(buf.getvalue()) < 64 * 1024
    assert _predict_file(channel, buf.getvalue(), "PNG") == grpc.StatusCode.INVALID_ARGUMENT


def _issue_21_inputs() -> dict[str, tuple[str, bytes]]:
    """The adversarial run's inputs that once crashed a call (INTERNAL) or were accepted: method, request."""
    import pydicom

    def tensor(shape: list[int], dtype: int = tensor_pb2.DTYPE_FLOAT32) -> tensor_pb2.Tensor:
        return tensor_pb2.Tensor(dtype=dtype, shape=shape, data=b"\x00" * 16)

    def predict(image: tensor_pb2.Image) -> bytes:
        return segmentation_pb2.PredictRequest(image=image).SerializeToString()

    def encoded(data: bytes, fmt: int) -> tensor_pb2.Image:
        return tensor_pb2.Image(encoded=tensor_pb2.EncodedImage(data=data, format=fmt))

    def pil(fmt: str) -> bytes:
        buf = io.BytesIO()
        PILImage.new("L", (16, 16)).save(buf, format=fmt)
        return buf.getvalue()

    def label(**fields: object) -> bytes:
        mask = fields.pop("mask", tensor([4, 4], tensor_pb2.DTYPE_UINT8))
        return active_learning_pb2.SubmitLabelRequest(
            image_id="0" * 16,
            annotator="fuzz",
            mask=mask,
            **fields,  # type: ignore[arg-type]
        ).SerializeToString()

    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    slopes = {}
    for slope in ("NaN", "1e308"):
        ct.RescaleSlope = slope
        buf = io.BytesIO()
        ct.save_as(buf, enforce_file_format=True)
        slopes[slope] = buf.getvalue()
    mpeg = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm", download=False))
    mpeg.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, mpeg, little_endian=True, implicit_vr=False)
    png, jpeg, dicom = tensor_pb2.IMAGE_FORMAT_PNG, tensor_pb2.IMAGE_FORMAT_JPEG, tensor_pb2.IMAGE_FORMAT_DICOM
    return {
        "tensor 2^32x2^32": ("Predict", predict(tensor_pb2.Image(tensor=tensor([2**32, 2**32])))),
        "tensor 2^62x4": ("Predict", predict(tensor_pb2.Image(tensor=tensor([2**62, 4])))),
        "tensor 65 axes": ("Predict", predict(tensor_pb2.Image(tensor=tensor([1] * 65)))),
        "mask 2^32x2^32": ("SubmitLabel", label(mask=tensor([2**32, 2**32], tensor_pb2.DTYPE_UINT8))),
        "mask 2^62x4": ("SubmitLabel", label(mask=tensor([2**62, 4], tensor_pb2.DTYPE_UINT8))),
        "BMP as PNG": ("Predict", predict(encoded(pil("BMP"), png))),
        "GIF as PNG": ("Predict", predict(encoded(pil("GIF"), png))),
        "TIFF as JPEG": ("Predict", predict(encoded(pil("TIFF"), jpeg))),
        "EPS as PNG": ("Predict", predict(encoded(b"%!PS-Adobe-3.0 EPSF-3.0\nshowpage\n", png))),
        "DICOM slope NaN": ("Predict", predict(encoded(slopes["NaN"], dicom))),
        "DICOM slope 1e308": ("Predict", predict(encoded(slopes["1e308"], dicom))),
        "DICOM MPEG2": ("Predict", predict(encoded(buf.getvalue(), dicom))),
        "QueryLevel 99": ("GetQueryList", active_learning_pb2.GetQueryListRequest(k=1, level=99).SerializeToString()),  # type: ignore[arg-type]
        "seconds NaN": ("SubmitLabel", label(seconds_spent=float("nan"))),
        "seconds inf": ("SubmitLabel", label(seconds_spent=float("inf"))),
        "threshold NaN": (
            "Predict",
            segmentation_pb2.PredictRequest(
                image=tensor_pb2.Image(tensor=tensor([2, 2])),
                options=segmentation_pb2.PredictOptions(threshold=float("nan")),
            ).SerializeToString(),
        ),
    }


ISSUE_21 = _issue_21_inputs()


@pytest.mark.parametrize("case", sorted(ISSUE_21))
def test_issue_21_inputs_are_invalid_argument(channel: grpc.Channel, case: str) -> None:
    name, payload = ISSUE_21[case]
    method = next(m for m in METHODS if m.name.endswith(f"/{name}"))
    assert _send(channel, method, payload, "issue-21 inputs") == grpc.StatusCode.INVALID_ARGUMENT, case


def test_server_survived_the_fuzz_run(channel: grpc.Channel) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    total = sum(SENT.values())
    crashes = CODES["INTERNAL"] + CODES["UNKNOWN"]
    print(f"\nfuzz run: {total} calls ({dict(SENT)}); status codes {dict(CODES)}; crashes: {crashes}; SERVING")
    assert crashes == 0
    fuzzed = total - SENT["issue-21 inputs"]
    assert fuzzed >= len(METHODS) * EXAMPLES // 2 or fuzzed == 0  # a filtered run (-k) sends fewer
