"""Segmentation over real gRPC: a server on 127.0.0.1:0, the real SDK, a trained model."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from ceal.client import Client, InvalidArgument, NotFound
from ceal.service.server import Running
from ceal.v1 import segmentation_pb2, segmentation_pb2_grpc, tensor_pb2
from tests.support.models import synth_dataset


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return synth_dataset(4, seed=7, height=70, width=90).images  # not the model's 48×64 input size


def test_predict_returns_maps_at_the_original_size(address: str, images: np.ndarray) -> None:
    with Client(address) as client:
        p = client.predict(
            images[0], samples=8, maps=("probability", "label_map", "entropy", "mutual_information", "variance")
        )
    assert p.probability is not None and p.probability.shape == (70, 90)
    assert p.label_map is not None and p.label_map.shape == (70, 90) and p.label_map.dtype == np.uint8
    assert set(np.unique(p.label_map)) <= {0, 1}
    for m in (p.entropy, p.mutual_information, p.variance):
        assert m is not None and m.shape == (70, 90) and np.isfinite(m).all()
    assert p.entropy is not None and p.mutual_information is not None
    assert (p.mutual_information <= p.entropy + 1e-5).all()
    assert p.samples == 8 and p.model_name == "lesion" and p.model_version == 1
    assert p.score == pytest.approx(p.scores[("mutual_information", "mean")])
    assert 0.0 <= p.foreground_fraction <= 1.0


def test_seeded_predictions_are_reproducible_and_differ_between_seeds(address: str, images: np.ndarray) -> None:
    with Client(address) as client:
        a = client.predict(images[1], samples=6, seed=3, maps=("probability",))
        b = client.predict(images[1], samples=6, seed=3, maps=("probability",))
        c = client.predict(images[1], samples=6, seed=4, maps=("probability",))
    assert a.probability is not None and b.probability is not None and c.probability is not None
    np.testing.assert_array_equal(a.probability, b.probability)
    assert not np.array_equal(a.probability, c.probability)


def test_raw_samples_on_request(address: str, images: np.ndarray) -> None:
    with Client(address) as client:
        p = client.predict(images[0], samples=5, return_samples=True, maps=("variance",))
    assert p.samples_raw is not None and p.samples_raw.dtype == np.float16
    assert p.samples_raw.shape == (5, 1, 48, 64)
    assert p.variance is not None
    assert p.probability is None and p.label_map is None  # maps not asked for are left out


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_encoded_images(address: str, images: np.ndarray, fmt: str) -> None:
    buf = io.BytesIO()
    PILImage.fromarray(images[2]).save(buf, format=fmt)
    with Client(address) as client:
        p = client.predict(buf.getvalue(), samples=4)
    assert p.label_map is not None and p.label_map.shape == (70, 90)


def test_dicom_image(address: str) -> None:
    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    with Client(address) as client:
        p = client.predict(path, samples=4)
    assert p.label_map is not None and p.label_map.shape == (128, 128)


def test_predict_stream_keeps_order(address: str, images: np.ndarray) -> None:
    with Client(address) as client:
        results = list(client.predict_many(list(images), samples=4))
    assert [r.request_id for r in results] == ["0", "1", "2", "3"]


def test_list_models(address: str) -> None:
    with Client(address) as client:
        (model,) = client.list_models()
    assert (model.name, model.version, model.input_shape, model.is_latest) == ("lesion", 1, (3, 48, 64), True)
    assert model.dropout_rate == 0.5 and model.provider == "CPUExecutionProvider"


def _raw_predict(address: str, image: tensor_pb2.Image, **options: object) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        stub = segmentation_pb2_grpc.SegmentationStub(channel)
        req = segmentation_pb2.PredictRequest(image=image, options=segmentation_pb2.PredictOptions(**options))
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(req, timeout=30)
    return info.value  # type: ignore[return-value]


def test_wrong_dtype_is_invalid_argument(address: str) -> None:
    err = _raw_predict(address, tensor_pb2.Image(tensor=tensor_pb2.Tensor(dtype=0, shape=[4, 4], data=bytes(16))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dtype" in (err.details() or "")


def test_byte_count_mismatch_is_invalid_argument(address: str) -> None:
    t = tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[8, 8], data=bytes(10))
    err = _raw_predict(address, tensor_pb2.Image(tensor=t))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs 256 bytes" in (err.details() or "")


def test_wrong_shape_is_invalid_argument(address: str) -> None:
    with Client(address) as client, pytest.raises(InvalidArgument, match=r"not an image") as info:
        client.predict(np.zeros((2, 8, 8, 3), np.uint8))
    assert isinstance(info.value.__cause__, grpc.RpcError)


def test_undecodable_bytes_are_invalid_argument(address: str) -> None:
    for data in (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, b"\xff\xd8\xff" + b"x" * 50, b"not an image"):
        with Client(address) as client, pytest.raises(InvalidArgument):
            client.predict(data)


def test_too_many_samples_is_invalid_argument(address: str, images: np.ndarray) -> None:
    with Client(address) as client, pytest.raises(InvalidArgument, match="samples must be between"):
        client.predict(images[0], samples=1000)


def test_unknown_model_is_not_found(address: str, images: np.ndarray) -> None:
    with Client(address) as client, pytest.raises(NotFound):
        client.predict(images[0], model="nope")


def test_health_and_reflection(server: Running, address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "ceal.v1.Segmentation", "ceal.v1.ActiveLearning"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_adaptive_sampling_stops_early_on_a_loose_tolerance(address: str, images: np.ndarray) -> None:
    with Client(address) as client:
        fixed = client.predict(images[0], samples=40, seed=1)
        adaptive = client.predict(images[0], samples=40, seed=1, adaptive_tolerance=1.0)
    assert fixed.samples == 40
    assert adaptive.samples < 40
