"""Rich error details (google.rpc ErrorInfo / BadRequest / RetryInfo), end to end: the server's one status map
encodes them, the SDK decodes them onto its exceptions (`reason`, `domain`, `field_violations`, `retry_after`).

Two halves: every reason of the map through a real gRPC server (a stand-in servicer raising each domain error,
because a damaged store or a full queue cannot be made on demand), then the reasons a real ceal server gives
to real bad requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np
import pytest

from ceal.client import AlreadyExists, CealError, Client, InvalidArgument, NotFound, Overloaded, ServerError
from ceal.client import Unavailable as ClientUnavailable
from ceal.service import errors
from ceal.service.servicers.status import unary
from ceal.service.store import errors as store_errors
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from ceal.v1 import tensor_pb2
from tests.support.models import synth_dataset


class Raising(seg_grpc.SegmentationServicer):
    """ListModels raises `error` through the service's status map; counts attempts."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.attempts = 0

    @unary
    def ListModels(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.attempts += 1
        raise self.error


@contextmanager
def raising_server(servicer: Raising) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    seg_grpc.add_SegmentationServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()


CASES = [
    # (error raised in the service, SDK exception, status code, ErrorInfo reason)
    (
        errors.InvalidInput("samples must be at most 100", field="options.samples"),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    ),
    (
        errors.InvalidInput("not an image", reason="INVALID_IMAGE", field="image"),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "INVALID_IMAGE",
    ),
    (errors.NotFound("model 'x' is not loaded", reason="MODEL_NOT_FOUND"), NotFound, "NOT_FOUND", "MODEL_NOT_FOUND"),
    (store_errors.NotFound("no image 'ab12' in pool 'p'"), NotFound, "NOT_FOUND", "IMAGE_NOT_FOUND"),
    (
        store_errors.Conflict("idempotency key 'k' was already used"),
        AlreadyExists,
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
    ),
    (errors.LeaseHeld("image 'ab12' is leased to another annotator"), ServerError, "FAILED_PRECONDITION", "LEASE_HELD"),
    (store_errors.WriteConflict("the write met a concurrent one: retry"), ServerError, "ABORTED", "WRITE_CONFLICT"),
    (errors.Overloaded("inference queue is full", retry_after=2.5), Overloaded, "RESOURCE_EXHAUSTED", "OVERLOADED"),
    (
        errors.Overloaded("the queue's wait exceeds the deadline", retry_after=2.5, reason="deadline"),
        Overloaded,
        "RESOURCE_EXHAUSTED",
        "WAIT_EXCEEDS_DEADLINE",
    ),
    (
        errors.DeadlineExceeded("deadline passed after 4 of 20 samples"),
        CealError,
        "DEADLINE_EXCEEDED",
        "DEADLINE_EXCEEDED",
    ),
    (
        errors.Unavailable("no model is loaded yet", reason="NO_MODEL_LOADED"),
        ClientUnavailable,
        "UNAVAILABLE",
        "NO_MODEL_LOADED",
    ),
    (
        errors.Unavailable("the server is shutting down", reason="SHUTTING_DOWN"),
        ClientUnavailable,
        "UNAVAILABLE",
        "SHUTTING_DOWN",
    ),
    (store_errors.StoreBusy("the pool database stayed locked"), ClientUnavailable, "UNAVAILABLE", "STORE_BUSY"),
    (store_errors.StoreDamaged("a stored array could not be decoded"), ServerError, "DATA_LOSS", "STORE_DAMAGED"),
    (store_errors.StoreError("pool database error: not a ceal pool"), ServerError, "INTERNAL", "STORE_ERROR"),
]


@pytest.mark.parametrize(("error", "kind", "code", "reason"), CASES, ids=[c[3] + "-" + c[2] for c in CASES])
def test_each_reason_reaches_the_sdk_with_its_details(
    error: errors.ServiceError, kind: type[CealError], code: str, reason: str
) -> None:
    servicer = Raising(error)
    with raising_server(servicer) as address, Client(address) as client, pytest.raises(kind) as raised:
        client.list_models()
    exc = raised.value
    assert exc.code == grpc.StatusCode[code]
    assert (exc.reason, exc.domain) == (reason, "ceal.v1")
    assert str(error) in str(exc)
    assert exc.status is not None and exc.status.message == str(error)
    field = getattr(error, "field", None)
    assert exc.field_violations == (((field, str(error)),) if field else ())
    assert exc.retry_after == (2.5 if code == "RESOURCE_EXHAUSTED" else None)
    # Only UNAVAILABLE is retried (inside gRPC, 5 attempts): a damaged store or a conflict is answered at once.
    assert servicer.attempts == (5 if code == "UNAVAILABLE" else 1)


def test_unexpected_errors_are_internal_without_their_text() -> None:
    servicer = Raising(KeyError("secret detail"))
    with raising_server(servicer) as address, Client(address) as client, pytest.raises(ServerError) as raised:
        client.list_models()
    assert raised.value.code == grpc.StatusCode.INTERNAL and raised.value.reason == "INTERNAL"
    assert "secret detail" not in str(raised.value) and "KeyError" in str(raised.value)


# ── a real server, real bad requests ──────────────────────────────────────────────────────────────────────


def _raw_predict(address: str, request: seg_pb.PredictRequest) -> CealError:
    from ceal.client.errors import from_rpc_error

    with grpc.insecure_channel(address) as channel:
        stub = seg_grpc.SegmentationStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=30)
    return from_rpc_error(raised.value)  # type: ignore[arg-type]


def test_a_tensor_that_is_no_image_is_invalid_image_on_field_image(address: str) -> None:
    bad = tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_UINT8, shape=[4, 4, 5], data=bytes(80))
    exc = _raw_predict(address, seg_pb.PredictRequest(image=tensor_pb2.Image(tensor=bad)))
    assert exc.code == grpc.StatusCode.INVALID_ARGUMENT and exc.reason == "INVALID_IMAGE"
    assert [f for f, _ in exc.field_violations] == ["image"]
    assert "(H, W, 3)" in exc.field_violations[0][1]


def test_too_many_samples_is_invalid_argument_on_field_options(address: str) -> None:
    image = synth_dataset(1, seed=1).images[0]
    with Client(address) as client, pytest.raises(InvalidArgument) as raised:
        client.predict(image, samples=1000)
    assert raised.value.reason == "INVALID_ARGUMENT"
    assert [f for f, _ in raised.value.field_violations] == ["options"]


def test_an_unknown_model_is_model_not_found(address: str) -> None:
    image = synth_dataset(1, seed=1).images[0]
    with Client(address) as client, pytest.raises(NotFound) as raised:
        client.predict(image, model="no-such-model")
    assert (raised.value.reason, raised.value.domain) == ("MODEL_NOT_FOUND", "ceal.v1")
    assert raised.value.field_violations == ()


def test_a_label_for_an_unknown_image_is_image_not_found(address: str) -> None:
    with Client(address) as client, pytest.raises(NotFound) as raised:
        client.submit_label("0" * 64, np.zeros((48, 64), np.uint8), annotator="dr-a", pool="p")
    assert raised.value.reason == "IMAGE_NOT_FOUND"


def test_a_reused_idempotency_key_is_already_exists(address: str) -> None:
    image = synth_dataset(1, seed=2).images[0]
    mask = np.zeros(image.shape[:2], np.uint8)
    with Client(address) as client:
        ((image_id, _),) = client.register_images([image], pool="p")
        client.submit_label(image_id, mask, annotator="dr-a", pool="p", idempotency_key="k1")
        with pytest.raises(AlreadyExists) as raised:
            client.submit_label(image_id, mask + 1, annotator="dr-a", pool="p", idempotency_key="k1")
    assert raised.value.reason == "IDEMPOTENCY_KEY_REUSED"


def test_bytes_that_are_no_request_are_malformed_request(address: str) -> None:
    from ceal.client.errors import from_rpc_error

    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary("/ceal.v1.Segmentation/Predict")
        with pytest.raises(grpc.RpcError) as raised:
            call(b"\xff\xff\xff", timeout=30)
    exc = from_rpc_error(raised.value)  # type: ignore[arg-type]
    assert exc.code == grpc.StatusCode.INVALID_ARGUMENT and (exc.reason, exc.domain) == ("MALFORMED_REQUEST", "ceal.v1")


def test_the_async_client_decodes_the_same_details() -> None:
    import asyncio

    from ceal.client import AsyncClient

    async def call(address: str) -> CealError:
        async with AsyncClient(address) as client:
            try:
                await client.list_models()
            except CealError as exc:
                return exc
        raise AssertionError("the call succeeded")

    with raising_server(Raising(errors.Overloaded("inference queue is full", retry_after=0.75))) as address:
        exc = asyncio.run(call(address))
    assert isinstance(exc, Overloaded) and exc.reason == "OVERLOADED" and exc.retry_after == 0.75
