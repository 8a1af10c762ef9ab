"""ceal.client.calls: the requests both clients send and the one error map, without a server."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from ceal.client import PoolImage, PoolStats, ScoreProgress, calls, pool_image
from ceal.client.errors import (
    CealError,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    ServerError,
    Unavailable,
)
from ceal.v1 import active_learning_pb2 as al_pb


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@given(code=st.sampled_from([c for c in grpc.StatusCode if c != grpc.StatusCode.OK]), details=st.text(max_size=40))
def test_every_status_becomes_a_ceal_error_raised_from_the_rpc_error(code: grpc.StatusCode, details: str) -> None:
    cause = FakeRpcError(code, details)
    with pytest.raises(CealError) as info, calls.translated():
        raise cause
    assert info.value.__cause__ is cause
    assert info.value.code == code
    assert details in str(info.value) and code.name in str(info.value)


@pytest.mark.parametrize(
    ("code", "kind", "builtin"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument, ValueError),
        (grpc.StatusCode.NOT_FOUND, NotFound, LookupError),
        (grpc.StatusCode.UNAVAILABLE, Unavailable, ConnectionError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded, TimeoutError),
        (grpc.StatusCode.INTERNAL, ServerError, CealError),
        (grpc.StatusCode.UNKNOWN, ServerError, CealError),
    ],
)
def test_status_codes_map_to_their_exception(code: grpc.StatusCode, kind: type, builtin: type) -> None:
    with pytest.raises(kind) as info, calls.translated():
        raise FakeRpcError(code, "x")
    assert isinstance(info.value, builtin)


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), calls.translated():
        raise KeyError("not a gRPC error")


@given(n=st.integers(min_value=0, max_value=12))
def test_predict_many_numbers_requests_in_order(n: int) -> None:
    images = [np.full((4, 5), i, np.uint8) for i in range(n)]
    call = calls.predict_many(images, samples=3, seed=9)
    requests = list(call.request)
    assert [r.request_id for r in requests] == [str(i) for i in range(n)]
    assert all(r.options.samples == 3 and r.options.seed == 9 for r in requests)
    assert (call.service, call.method, call.stream, call.total) == ("segmentation", "PredictStream", True, n)


def test_unary_calls_name_their_stub_method() -> None:
    image = np.zeros((4, 4), np.float32)
    built: list[calls.Call[Any]] = [
        calls.predict(image),
        calls.list_models(),
        calls.register_images([image], pool="p"),
        calls.query_list(series=True),
        calls.submit_label("id", np.zeros((4, 4), bool), annotator="a"),
        calls.find_similar("id"),
        calls.pool_stats(),
    ]
    assert [(c.method, c.stream) for c in built] == [
        ("Predict", False),
        ("ListModels", False),
        ("RegisterImages", False),
        ("GetQueryList", False),
        ("SubmitLabel", False),
        ("FindSimilar", False),
        ("GetPoolStats", False),
    ]
    assert built[3].request.level == al_pb.QUERY_LEVEL_SERIES


def test_wrong_choices_say_what_to_pick() -> None:
    with pytest.raises(ValueError, match="choose one of human, pseudo"):
        calls.export_labels(sources=["robot"])
    with pytest.raises(ValueError, match="unknown strategy 'best'"):
        calls.query_list(strategy="best")


def test_score_progress_moves_the_bar_to_the_server_count() -> None:
    call = calls.score_pool()
    bar = call.bar(False)
    call.advance(al_pb.ScorePoolProgress(done=3, total=8), bar)
    assert (bar.n, bar.total) == (3, 8)
    bar.close()


def test_adaptive_options_travel_in_both_requests() -> None:
    pool = calls.score_pool(samples=20, adaptive_tolerance=0.002, adaptive_min_samples=4).request
    assert (pool.samples, pool.adaptive_tolerance, pool.adaptive_min_samples) == (20, 0.002, 4)
    predict = calls.predict(np.zeros((4, 4), np.float32), adaptive_tolerance=0.5, adaptive_min_samples=12).request
    assert (predict.options.adaptive_tolerance, predict.options.adaptive_min_samples) == (0.5, 12)
    assert calls.score_pool().request.adaptive_min_samples == 0  # unset: the server's default floor


def _not_the_default(field: FieldDescriptor) -> object:
    """A value for the field that is not its default: its number, as a string for strings, True for bools."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"s{field.number}"
    return True if field.type == FieldDescriptor.TYPE_BOOL else field.number


@pytest.mark.parametrize(
    ("result", "message"), [(ScoreProgress, al_pb.ScorePoolProgress), (PoolStats, al_pb.PoolStats)]
)
def test_pool_results_are_plain_dataclasses_with_every_field_of_the_reply(result: Any, message: Any) -> None:
    assert [f.name for f in dataclasses.fields(result)] == [f.name for f in message.DESCRIPTOR.fields]
    values = {f.name: _not_the_default(f) for f in message.DESCRIPTOR.fields}
    read = result.from_proto(message(**values))
    assert dataclasses.asdict(read) == values
    assert not any(isinstance(v, Message) for v in dataclasses.astuple(read))


def test_score_pool_and_pool_stats_replies_are_read_into_the_sdks_types() -> None:
    reply = calls.score_pool().reply(al_pb.ScorePoolProgress(done=3, total=8, finished=True, model_version=2))
    assert reply == ScoreProgress(done=3, total=8, finished=True, model_version=2)
    stats = calls.pool_stats(pool="p").reply(al_pb.PoolStats(pool="p", images=5, scored_fresh=4))
    assert (stats.pool, stats.images, stats.scored_fresh, stats.leased) == ("p", 5, 4, 0)


def test_images_register_bare_or_with_their_metadata() -> None:
    image = np.zeros((4, 4), np.uint8)
    described = pool_image(image, series_key="s", study_key="t", slice_index=2, dicom=("1.2", "1.3", "1.4"), frame=1)
    assert isinstance(described, PoolImage)
    bare, full = calls.register_images([image, described], pool="p").request.images
    assert not bare.HasField("dicom") and (bare.series_key, bare.slice_index) == ("", 0)
    assert (full.series_key, full.study_key, full.slice_index) == ("s", "t", 2)
    ref = full.dicom
    assert (ref.study_instance_uid, ref.series_instance_uid, ref.sop_instance_uid, ref.frame_number) == (
        "1.2",
        "1.3",
        "1.4",
        1,
    )
    assert bare.image == full.image
