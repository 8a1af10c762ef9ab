"""The blocking SDK against a real server: error mapping, deadlines, retries, streaming order and progress."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from ceal.client import Client, DeadlineExceeded, InvalidArgument, NotFound, Unavailable
from tests.integration.client.recording_server import WIRE_ROUNDING_S, Recording, dead_address, recording_server
from tests.support.models import synth_dataset


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return synth_dataset(5, seed=3, height=40, width=52).images


def test_invalid_argument_is_raised_from_the_rpc_error(address: str) -> None:
    with Client(address) as client, pytest.raises(InvalidArgument, match="samples must be between") as info:
        client.predict(np.zeros((8, 8), np.float32), samples=10_000)
    cause = info.value.__cause__
    assert isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_not_found_names_what_exists(address: str, images: np.ndarray) -> None:
    with Client(address) as client, pytest.raises(NotFound, match="lesion") as info:
        client.predict(images[0], model="no-such-model")
    assert isinstance(info.value.__cause__, grpc.RpcError)
    with Client(address) as client, pytest.raises(NotFound):
        client.find_similar("no-such-image", pool="empty")


def test_a_dead_port_is_unavailable_after_the_retries() -> None:
    with Client(dead_address(), timeout=30) as client, pytest.raises(Unavailable) as info:
        client.list_models()
    assert info.value.__cause__.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[union-attr]


def test_unavailable_is_retried_until_the_server_answers() -> None:
    servicer = Recording(unavailable=2)
    with recording_server(servicer) as address, Client(address) as client:
        assert client.list_models() == []
    assert servicer.attempts == 3


def test_retries_stop_after_five_attempts() -> None:
    servicer = Recording(unavailable=100)
    with recording_server(servicer) as address, Client(address) as client, pytest.raises(Unavailable):
        client.list_models()
    assert servicer.attempts == 5


def test_the_default_deadline_and_token_reach_the_server() -> None:
    servicer = Recording()
    with recording_server(servicer) as address:
        with Client(address, timeout=7.5, token="s3cret") as client:
            client.list_models()
            assert [p.request_id for p in client.predict_many([np.zeros((2, 2), np.uint8)] * 2)] == ["0", "1"]
        with Client(address, stream_timeout=300.0) as client:
            list(client.predict_many([np.zeros((2, 2), np.uint8)]))
    unary, stream, bounded_stream = servicer.time_remaining
    assert unary is not None and 0 < unary <= 7.5 + WIRE_ROUNDING_S
    assert stream is not None and stream > 1e9  # no deadline ("infinite") unless one is asked for
    assert bounded_stream is not None and 7.5 + WIRE_ROUNDING_S < bounded_stream <= 300 + WIRE_ROUNDING_S
    assert servicer.metadata[0]["authorization"] == "Bearer s3cret"


def test_an_expired_default_deadline_is_deadline_exceeded(address: str, images: np.ndarray) -> None:
    with Client(address, timeout=1e-6) as client, pytest.raises(DeadlineExceeded) as info:
        client.predict(images[0], samples=20)
    assert info.value.__cause__.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[union-attr]
    with Client(address, timeout=1e-6) as client:  # a per-call timeout overrides the default
        assert client.predict(images[0], samples=2, timeout=60).samples == 2


def test_predict_many_keeps_order_and_shows_progress(
    address: str, images: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(address) as client:
        streamed = list(client.predict_many(list(images), samples=4, seed=5, progress=True))
        single = [client.predict(img, samples=4, seed=5) for img in images]
    assert [p.request_id for p in streamed] == ["0", "1", "2", "3", "4"]
    for got, want in zip(streamed, single, strict=True):
        assert got.label_map is not None and want.label_map is not None
        np.testing.assert_array_equal(got.label_map, want.label_map)
    err = capsys.readouterr().err
    assert "predict" in err and "5/5" in err


def test_breaking_off_a_stream_leaves_the_client_usable(address: str, images: np.ndarray) -> None:
    with Client(address) as client:
        stream = client.predict_many(list(images), samples=2)
        first = next(stream)
        stream.close()
        assert first.request_id == "0"
        assert client.list_models()[0].name == "lesion"
