"""Limits and overload over real gRPC: message size, pixels, T, images per call, a full queue, deadlines and
cancellation. A "slow model" is the real one with its prefix run held at a gate (no sleeps, no timings)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from ceal.client import requests
from ceal.service.errors import DeadlineExceeded
from ceal.service.servicers.active_learning import MAX_IMAGES_PER_CALL
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from tests.integration.hardening.conftest import WAIT, captured_jobs, held_prefix, wait_until
from tests.support.server import in_process


def _stub(port: int) -> tuple[grpc.Channel, seg_grpc.SegmentationStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, seg_grpc.SegmentationStub(channel)


def test_full_queue_answers_resource_exhausted_at_once(models_dir: Path, image: np.ndarray) -> None:
    with in_process(models_dir, max_queue=1, max_queue_delay=0.0) as running, held_prefix(running) as gate:
        channel, stub = _stub(running.port)
        with channel:
            request = requests.predict_request(image, samples=2)
            running_call = stub.Predict.future(request, timeout=WAIT)  # taken by the worker, held at the gate
            assert gate.entered.wait(WAIT)
            queued_call = stub.Predict.future(request, timeout=WAIT)  # fills the one-slot queue
            wait_until(lambda: running.engine.batcher.depth == 1, "the second call to be queued")
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, timeout=WAIT)  # answered while the model is still held: no waiting
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "queue is full" in (info.value.details() or "")
            gate.release.set()
            assert running_call.result().samples == 2 and queued_call.result().samples == 2


def test_cancelled_call_frees_its_queue_slot(models_dir: Path, image: np.ndarray) -> None:
    with (
        in_process(models_dir, max_queue=4, max_queue_delay=0.0) as running,
        held_prefix(running) as gate,
        captured_jobs(running) as jobs,
    ):
        channel, stub = _stub(running.port)
        with channel:
            request = requests.predict_request(image, samples=2)
            first = stub.Predict.future(request, timeout=WAIT)
            assert gate.entered.wait(WAIT)
            doomed = stub.Predict.future(request, timeout=WAIT)
            wait_until(lambda: len(jobs) == 2, "the second call's job to be queued")
            doomed.cancel()
            wait_until(jobs[1].cancelled, "the cancelled call's job to be cancelled")
            gate.release.set()
            assert first.result().samples == 2
            wait_until(lambda: running.engine.batcher.depth == 0, "the queue to drain")
            # the worker skipped the cancelled job: one prefix run (the first call), one image served
            assert running.engine.batcher.stats.images == 1 and gate.runs == 1
            assert stub.Predict(request, timeout=WAIT).samples == 2  # and the server carries on


def test_expired_deadline_stops_between_monte_carlo_chunks(models_dir: Path, image: np.ndarray) -> None:
    with in_process(models_dir, max_queue_delay=0.0) as running, captured_jobs(running) as jobs:
        model = running.registry.get()
        model.max_rows = 1  # one Monte-Carlo sample per suffix chunk
        suffix = model.suffix
        chunks: list[int] = []
        past_deadline = threading.Event()
        deadlines: list[float] = []
        submit = running.engine.batcher.submit

        def recording_submit(*args: Any, **kwargs: Any) -> Any:
            deadlines.append(args[4])  # the server's own deadline (its clock, set when the call arrived)
            return submit(*args, **kwargs)

        running.engine.batcher.submit = recording_submit  # type: ignore[method-assign]

        class HeldSuffix:
            """The real suffix session; its first chunk returns only once both deadlines have passed.

            The server's deadline can be later than the client's by the call's transit time, so the chunk also
            waits for the server's clock to pass it (otherwise a loaded machine draws a few more chunks).
            """

            def run(self, *args: object) -> object:
                chunks.append(1)
                if len(chunks) == 1:
                    assert past_deadline.wait(WAIT)
                    while time.monotonic() <= deadlines[0]:
                        time.sleep(0.01)
                return suffix.run(*args)  # type: ignore[arg-type]

            def __getattr__(self, name: str) -> object:
                return getattr(suffix, name)

        model.suffix = HeldSuffix()  # type: ignore[assignment]
        channel, stub = _stub(running.port)
        with channel:
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(requests.predict_request(image, samples=50), timeout=1.0)
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            past_deadline.set()
            wait_until(lambda: len(jobs) == 1 and jobs[0].done(), "the engine to give up")
            assert isinstance(jobs[0].exception(), DeadlineExceeded)
            assert len(chunks) == 1  # 1 of 50 samples drawn: the work stopped at the next chunk boundary
        model.suffix = suffix  # type: ignore[assignment]


def test_request_limits_are_invalid_argument(models_dir: Path, tmp_path: Path, image: np.ndarray) -> None:
    with in_process(
        models_dir, tmp_path / "state", max_pixels=64 * 64, max_samples=10, max_message_bytes=256 * 1024
    ) as running:
        channel, stub = _stub(running.port)
        with channel:
            pool = al_grpc.ActiveLearningStub(channel)
            cases = {
                "exceeds the limit of 4096": requests.predict_request(np.zeros((65, 64), np.uint8), samples=4),
                "samples must be between 1 and 10": requests.predict_request(image[:32, :32], samples=11),
            }
            for words, request in cases.items():
                with pytest.raises(grpc.RpcError) as info:
                    stub.Predict(request, timeout=WAIT)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in (info.value.details() or "")
            tiny = requests.pool_image_message(np.zeros((2, 2), np.uint8))
            too_many = al_pb.RegisterImagesRequest(images=[tiny] * (MAX_IMAGES_PER_CALL + 1))
            with pytest.raises(grpc.RpcError) as info:
                pool.RegisterImages(too_many, timeout=WAIT)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "send batches" in (info.value.details() or "")
            huge = requests.predict_request(np.zeros((600, 600), np.uint8))  # 360 kB > 256 kB message limit
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(huge, timeout=WAIT)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_concurrent_call_cap_answers_resource_exhausted(models_dir: Path, image: np.ndarray) -> None:
    with in_process(models_dir, max_concurrent_rpcs=1, max_queue_delay=0.0) as running, held_prefix(running) as gate:
        channel, stub = _stub(running.port)
        with channel:
            request = requests.predict_request(image, samples=2)
            held = stub.Predict.future(request, timeout=WAIT)
            assert gate.entered.wait(WAIT)
            with pytest.raises(grpc.RpcError) as info:
                stub.ListModels(seg_pb.ListModelsRequest(), timeout=WAIT)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            gate.release.set()
            assert held.result().samples == 2
