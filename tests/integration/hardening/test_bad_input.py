"""Defects found by the adversarial run (issue 21), one test each with the inputs it listed: bad input gets
INVALID_ARGUMENT saying what to change (never INTERNAL), the decoder surface is PNG/JPEG/DICOM only, compressed
DICOM decodes or names its transfer syntax, sizes are checked before the work, the SDK does not retry a message
that is too large."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from ceal.client import requests
from ceal.client.codec import to_tensor
from ceal.client.errors import MessageTooLarge, Overloaded, from_rpc_error
from ceal.service.server import Running
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from ceal.v1 import tensor_pb2
from tests.integration.hardening.conftest import WAIT
from tests.support.server import in_process

F32 = tensor_pb2.DTYPE_FLOAT32


@pytest.fixture(scope="module")
def served(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, grpc.Channel]]:
    """One server with default settings and a pool holding one image, for the whole module."""
    state = tmp_path_factory.mktemp("bad-input") / "state"
    with in_process(models_dir, state) as running, grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield running, channel


def _refusal(call: object, request: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        result = call(request, timeout=WAIT)  # type: ignore[operator]
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)
    return info.value.code(), info.value.details() or ""


def _encoded(data: bytes, fmt: int) -> seg_pb.PredictRequest:
    image = tensor_pb2.Image(encoded=tensor_pb2.EncodedImage(data=data, format=fmt))
    return seg_pb.PredictRequest(image=image, options=seg_pb.PredictOptions(samples=2))


def _file(fmt: str, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    PILImage.new(mode, (40, 30), 128).save(buf, format=fmt)
    return buf.getvalue()


# ── shapes that overflow ───────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("shape", [[2**32, 2**32], [2**62, 4]], ids=["2^32x2^32", "2^62x4"])
def test_tensor_whose_declared_shape_overflows_is_invalid_argument(
    served: tuple[Running, grpc.Channel], shape: list[int]
) -> None:
    image = tensor_pb2.Image(tensor=tensor_pb2.Tensor(dtype=F32, shape=shape, data=b"\x00" * 16))
    code, details = _refusal(seg_grpc.SegmentationStub(served[1]).Predict, seg_pb.PredictRequest(image=image))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "image.tensor" in details and "exceed the limit" in details and "send a smaller image" in details


@pytest.mark.parametrize("shape", [[2**32, 2**32], [2**62, 4]], ids=["2^32x2^32", "2^62x4"])
def test_submit_label_mask_whose_shape_overflows_is_invalid_argument(
    served: tuple[Running, grpc.Channel], shape: list[int]
) -> None:
    mask = tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_UINT8, shape=shape, data=b"\x00" * 16)
    request = al_pb.SubmitLabelRequest(image_id="x" * 16, annotator="a", mask=mask)
    code, details = _refusal(al_grpc.ActiveLearningStub(served[1]).SubmitLabel, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "mask: shape" in details and f"needs {shape[0] * shape[1]} bytes, got 16" in details


# ── the decoder surface ────────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("actual", "declared", "fmt"),
    [
        ("BMP", "PNG", tensor_pb2.IMAGE_FORMAT_PNG),
        ("GIF", "PNG", tensor_pb2.IMAGE_FORMAT_PNG),
        ("TIFF", "JPEG", tensor_pb2.IMAGE_FORMAT_JPEG),
        ("EPS", "PNG", tensor_pb2.IMAGE_FORMAT_PNG),
    ],
)
def test_other_formats_declared_as_png_or_jpeg_are_refused_before_decoding(
    served: tuple[Running, grpc.Channel], actual: str, declared: str, fmt: int
) -> None:
    data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n" if actual == "EPS" else _file(actual)
    code, details = _refusal(seg_grpc.SegmentationStub(served[1]).Predict, _encoded(data, fmt))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"format is {declared} but the bytes are" in details
    assert f"send {declared} bytes, or set image.encoded.format" in details


def test_pil_is_only_ever_asked_for_the_declared_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from ceal.service import codec

    asked: list[object] = []
    real_open = PILImage.open

    def recording_open(fp: object, mode: str = "r", formats: object = None) -> PILImage.Image:
        asked.append(formats)
        return real_open(fp, mode, formats)  # type: ignore[arg-type]

    monkeypatch.setattr(codec.PILImage, "open", recording_open)
    codec.decode_image_bytes(_file("PNG"), tensor_pb2.IMAGE_FORMAT_PNG)
    codec.decode_image_bytes(_file("JPEG"), tensor_pb2.IMAGE_FORMAT_JPEG)
    codec.decode_image_bytes(_file("JPEG"), tensor_pb2.IMAGE_FORMAT_UNSPECIFIED)
    assert asked == [("PNG",), ("JPEG",), ("JPEG",)]


# ── values accepted that should not be ─────────────────────────────────────────────────────────────────────
def _dicom(**attributes: str) -> bytes:
    path = get_testdata_file("CT_small.dcm", download=False)
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("slope", ["NaN", "1e308"])
def test_dicom_rescale_slope_nan_or_huge_is_invalid_argument(served: tuple[Running, grpc.Channel], slope: str) -> None:
    request = _encoded(_dicom(RescaleSlope=slope), tensor_pb2.IMAGE_FORMAT_DICOM)
    code, details = _refusal(seg_grpc.SegmentationStub(served[1]).Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        "DICOM RescaleSlope is" in details and "must be a finite number" in details and "fix the attribute" in details
    )


def test_unknown_query_level_99_is_invalid_argument(served: tuple[Running, grpc.Channel]) -> None:
    request = al_pb.GetQueryListRequest(k=1, level=99)  # type: ignore[arg-type]
    code, details = _refusal(al_grpc.ActiveLearningStub(served[1]).GetQueryList, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "level: QueryLevel 99 is not known" in details and "QUERY_LEVEL_SERIES" in details


def test_submit_label_with_seconds_nan_is_invalid_argument(served: tuple[Running, grpc.Channel]) -> None:
    mask = to_tensor(np.zeros((4, 4), np.uint8))
    request = al_pb.SubmitLabelRequest(image_id="x" * 16, annotator="a", mask=mask, seconds_spent=float("nan"))
    code, details = _refusal(al_grpc.ActiveLearningStub(served[1]).SubmitLabel, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "seconds_spent is nan; send a finite number" in details


# ── compressed DICOM ───────────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "JPGExtended.dcm", "JPEG2000.dcm"])
def test_compressed_dicom_decodes(served: tuple[Running, grpc.Channel], name: str) -> None:
    """JPEG baseline, JPEG extended and JPEG 2000, decoded by pylibjpeg's plugins through pydicom."""
    path = get_testdata_file(name, download=False)
    assert path is not None
    request = _encoded(Path(path).read_bytes(), tensor_pb2.IMAGE_FORMAT_DICOM)
    reply = seg_grpc.SegmentationStub(served[1]).Predict(request, timeout=WAIT)
    assert reply.samples == 2 and reply.label_map.shape[:2] == list(pydicom.dcmread(path).pixel_array.shape[:2])


def test_compressed_dicom_without_a_decoder_names_its_transfer_syntax(served: tuple[Running, grpc.Channel]) -> None:
    path = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm", download=False)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML  # encapsulated video: no pixel decoder exists
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, little_endian=True, implicit_vr=False)
    code, details = _refusal(
        seg_grpc.SegmentationStub(served[1]).Predict, _encoded(buf.getvalue(), tensor_pb2.IMAGE_FORMAT_DICOM)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "transfer syntax MPEG2 Main Profile / Main Level (1.2.840.10008.1.2.4.100)" in details
    assert "send the file uncompressed" in details and "not a decodable DICOM file" not in details


# ── sizes known before the work ────────────────────────────────────────────────────────────────────────────
def test_predict_whose_response_cannot_fit_is_refused_up_front(served: tuple[Running, grpc.Channel]) -> None:
    running, channel = served
    runs = running.engine.batcher.stats.runs
    request = requests.predict_request(np.zeros((4096, 4096), np.uint8), samples=2)  # default maps: ~144 MiB
    code, details = _refusal(seg_grpc.SegmentationStub(channel).Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "4096×4096 image would be about 144" in details and "over the 64 MiB message limit" in details
    assert "probability 64.0 MiB, label_map 16.0 MiB, entropy 64.0 MiB" in details
    assert "fewer maps" in details and "float16_maps" in details
    assert running.engine.batcher.stats.runs == runs  # no engine work was spent on it


def test_float16_maps_halve_the_float_maps(served: tuple[Running, grpc.Channel], image: np.ndarray) -> None:
    stub = seg_grpc.SegmentationStub(served[1])
    half = stub.Predict(requests.predict_request(image, samples=2, seed=1, float16_maps=True), timeout=WAIT)
    full = stub.Predict(requests.predict_request(image, samples=2, seed=1), timeout=WAIT)
    assert half.probability.dtype == tensor_pb2.DTYPE_FLOAT16 and half.entropy.dtype == tensor_pb2.DTYPE_FLOAT16
    assert full.probability.dtype == F32 and len(half.probability.data) * 2 == len(full.probability.data)
    got = np.frombuffer(half.probability.data, "<f2").astype(np.float32)
    np.testing.assert_allclose(got, np.frombuffer(full.probability.data, "<f4"), atol=1e-3)


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_sdk_does_not_take_message_larger_than_max_for_overload() -> None:
    too_large = from_rpc_error(
        _Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, "Sent message larger than max (150995073 vs. 67108864)")
    )
    assert isinstance(too_large, MessageTooLarge) and not isinstance(too_large, Overloaded)
    busy = from_rpc_error(_Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, "inference queue is full (64 requests waiting)"))
    assert isinstance(busy, Overloaded)


def test_export_labels_with_one_large_image_keeps_every_record(models_dir: Path, tmp_path: Path) -> None:
    from ceal.service.store.base import NewImage

    limit = 1024 * 1024
    with in_process(models_dir, tmp_path / "state", max_message_bytes=limit) as running:
        store = running.active_learning.store
        assert store is not None
        images = [np.full((20, 20), 1, np.uint8), np.full((800, 800, 3), 2, np.uint8), np.full((20, 20), 3, np.uint8)]
        ids = [i for i, _ in store.register_images("default", [NewImage(p) for p in images])]
        for image_id, pixels in zip(ids, images, strict=True):
            mask = np.zeros(pixels.shape[:2], np.uint8)
            store.submit_label("default", image_id, mask, annotator="a", source="human", seconds_spent=1.0)
        with grpc.insecure_channel(
            f"127.0.0.1:{running.port}", options=[("grpc.max_receive_message_length", limit)]
        ) as channel:
            request = al_pb.ExportLabelsRequest(include_images=True)
            records = list(al_grpc.ActiveLearningStub(channel).ExportLabels(request, timeout=WAIT))
    assert sorted(r.image_id for r in records) == sorted(ids)  # all 3 records, none dropped around the large one
    by_id = {r.image_id: r for r in records}
    large = by_id[ids[1]]
    assert large.mask.shape == [800, 800] and not large.HasField("image")
    assert "800×800 image" in large.image_omitted and "message limit" in large.image_omitted
    assert "--max-message-bytes" in large.image_omitted
    for small in (ids[0], ids[2]):
        assert by_id[small].image.shape == [20, 20] and by_id[small].image_omitted == ""
