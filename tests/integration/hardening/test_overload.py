"""Overload under default settings (issue 21): calls beyond the machine-derived cap, and calls that would miss
their deadline behind the backlog, are refused at once with RESOURCE_EXHAUSTED and a retry delay; a cancelled
PredictStream stops its engine work at the next chunk. The model is held at a gate and the service rate is a
fixed, injected estimate, so every decision is the same on a loaded machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from ceal.client import requests
from ceal.service.engine.batcher import ServiceRate
from ceal.service.server import (
    MIN_CONCURRENT_RPCS,
    ServerConfig,
    concurrent_rpc_cap,
    default_max_concurrent_rpcs,
    machine_memory_bytes,
)
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from tests.integration.hardening.conftest import WAIT, captured_jobs, held_prefix, wait_until
from tests.support.server import in_process

MIB = 1024 * 1024


class FixedRate(ServiceRate):
    """The engine's speed as the test says it is: `per` seconds per Monte-Carlo sample, never re-measured."""

    def __init__(self, per: float) -> None:
        super().__init__()
        self.per = per

    def observe(self, samples: int, seconds: float) -> None:
        pass

    def seconds_per_sample(self) -> float | None:
        return self.per


def test_the_default_cap_comes_from_the_workers_and_the_memory() -> None:
    assert default_max_concurrent_rpcs(16, 64 * MIB, 128 * 1024 * MIB) == 16  # bounded by the RPC workers
    assert default_max_concurrent_rpcs(16, 64 * MIB, 2 * 1024 * MIB) == MIN_CONCURRENT_RPCS  # by the memory
    assert default_max_concurrent_rpcs(16, 64 * MIB, 6 * 1024 * MIB) == 12  # 3 GiB / (4 × 64 MiB)
    assert default_max_concurrent_rpcs(16, 64 * MIB, None) == 16
    config = ServerConfig(models=Path("."))
    assert config.max_concurrent_rpcs is None  # the default is derived, not "no cap"
    assert concurrent_rpc_cap(config) == default_max_concurrent_rpcs(16, 64 * MIB, machine_memory_bytes())
    assert concurrent_rpc_cap(ServerConfig(models=Path("."), max_concurrent_rpcs=0)) is None  # 0: no cap


def test_calls_beyond_the_default_cap_are_refused_at_once(models_dir: Path, image: np.ndarray) -> None:
    with in_process(models_dir, max_queue_delay=0.0) as running, held_prefix(running) as gate:
        cap = concurrent_rpc_cap(ServerConfig(models=models_dir))
        assert cap is not None
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = seg_grpc.SegmentationStub(channel)
            request = requests.predict_request(image, samples=2)
            held = [stub.Predict.future(request, timeout=WAIT) for _ in range(cap)]
            assert gate.entered.wait(WAIT)
            wait_until(lambda: running.engine.batcher.backlog == 2 * cap, f"{cap} calls to reach the engine")
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, timeout=WAIT)  # answered while every admitted call is still held
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            gate.release.set()
            assert all(f.result().samples == 2 for f in held)  # the accepted ones all succeed


def test_a_call_that_would_miss_its_deadline_is_refused_at_once_with_a_retry_delay(
    models_dir: Path, image: np.ndarray
) -> None:
    with in_process(models_dir, max_queue_delay=0.0) as running, held_prefix(running) as gate:
        running.engine.batcher.rate = FixedRate(1.0)  # 1 s per Monte-Carlo sample
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = seg_grpc.SegmentationStub(channel)
            first = stub.Predict.future(requests.predict_request(image, samples=2), timeout=WAIT)
            assert gate.entered.wait(WAIT)  # 2 samples of backlog: 2 s
            with pytest.raises(grpc.RpcError) as info:  # 2 s + 10 s of its own > its 5 s
                stub.Predict(requests.predict_request(image, samples=10), timeout=5.0)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = info.value.details() or ""
            assert "would finish in about 12.00 s, after its deadline" in details
            assert "retry after 2.00 s" in details and "longer deadline" in details and "fewer samples" in details
            assert running.engine.batcher.backlog == 2  # refused without queueing
            accepted = stub.Predict.future(requests.predict_request(image, samples=10), timeout=WAIT)  # 12 s < 30 s
            wait_until(lambda: running.engine.batcher.backlog == 12, "the second call to be admitted")
            gate.release.set()
            assert first.result().samples == 2 and accepted.result().samples == 10


def test_a_cancelled_predict_stream_draws_no_more_samples(models_dir: Path, image: np.ndarray) -> None:
    with (
        in_process(models_dir, max_queue_delay=0.0) as running,
        captured_jobs(running) as jobs,
        held_prefix(running) as gate,
    ):
        model = running.registry.get()
        model.max_rows = 1  # one Monte-Carlo sample per suffix chunk
        suffix = model.suffix
        chunks: list[int] = []

        class CountedSuffix:
            def run(self, *args: Any) -> Any:
                chunks.append(1)
                return suffix.run(*args)

            def __getattr__(self, name: str) -> Any:
                return getattr(suffix, name)

        model.suffix = CountedSuffix()  # type: ignore[assignment]
        try:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = seg_grpc.SegmentationStub(channel)
                stream = stub.PredictStream(
                    iter([requests.predict_request(image, samples=8, request_id=str(i)) for i in range(3)]),
                    timeout=WAIT,
                )
                assert gate.entered.wait(WAIT)  # the first image is in the engine, held before its samples
                stream.cancel()
                wait_until(lambda: all(j.abandoned.is_set() for j in jobs), "the jobs to be cancelled")  # type: ignore[attr-defined]
                gate.release.set()
                wait_until(lambda: running.engine.batcher.backlog == 0, "the engine to drop the stream's work")
            assert jobs and all(j.done() for j in jobs)
            assert chunks == []  # without the check, the held image alone would have drawn 8 chunks
        finally:
            model.suffix = suffix  # type: ignore[assignment]
