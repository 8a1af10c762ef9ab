"""Lifecycle: NOT_SERVING while the models load and once shutdown starts; SIGTERM drains calls in flight."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ceal.client import requests
from ceal.service.registry import ModelRegistry
from ceal.service.server import Running, ServerConfig, create_server
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import active_learning_pb2_grpc as al_pb_grpc
from tests.integration.hardening.conftest import WAIT, ceal_methods, raw_call, wait_until
from tests.support.server import ServerProcess, in_process

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=WAIT)
    return int(reply.status)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_not_serving_until_the_models_are_loaded(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loading, loaded = threading.Event(), threading.Event()
    real_scan = ModelRegistry.scan

    def slow_scan(self: ModelRegistry) -> list[object]:
        loading.set()
        assert loaded.wait(WAIT)
        return real_scan(self)  # type: ignore[return-value]

    monkeypatch.setattr(ModelRegistry, "scan", slow_scan)
    address = f"127.0.0.1:{_free_port()}"
    started: list[Running] = []
    starter = threading.Thread(target=lambda: started.append(create_server(ServerConfig(models_dir, address))))
    starter.start()
    try:
        assert loading.wait(WAIT)
        # the port is open while loading, and says so
        assert {_health(address, s) for s in ("", "ceal.v1.Segmentation", "ceal.v1.ActiveLearning")} == {NOT_SERVING}
        loaded.set()
        starter.join(WAIT)
        assert started and _health(address) == SERVING
        assert [m.meta.name for m in started[0].registry.models()] == ["lesion"]
    finally:
        loaded.set()
        starter.join(WAIT)
        for running in started:
            running.stop(grace=1.0)


def test_not_serving_before_new_calls_are_refused(models_dir: Path) -> None:
    with in_process(models_dir) as running:
        address = f"127.0.0.1:{running.port}"
        assert _health(address) == SERVING
        seen: list[int] = []
        real_stop = running.server.stop

        def stop(grace: float | None) -> threading.Event:
            seen.append(_health(address))  # the server still answers here: what does it say?
            return real_stop(grace)  # type: ignore[no-any-return]

        running.server.stop = stop  # type: ignore[method-assign]
        running.stop(grace=1.0)
        assert seen == [NOT_SERVING]


@pytest.mark.slow
def test_sigterm_drains_the_call_in_flight_then_exits_0(models_dir: Path, tmp_path: Path) -> None:
    server = ServerProcess(models_dir, tmp_path / "state", tmp_path / "server.log", "--max-batch", "1")
    try:
        images = [np.full((48, 64), i * 7 % 256, np.uint8) for i in range(8)]
        with grpc.insecure_channel(server.address) as channel:
            stub = al_pb_grpc.ActiveLearningStub(channel)
            stub.RegisterImages(
                al_pb.RegisterImagesRequest(images=[requests.pool_image_message(i) for i in images]), timeout=WAIT
            )
            # a server stream of 8 images, T=40, one image per engine run
            stream = stub.ScorePool(al_pb.ScorePoolRequest(samples=40), timeout=WAIT)
            first = next(stream)  # the call is now in flight on the server
            assert first.total == 8 and first.done == 0
            server.proc.send_signal(15)
            progress = list(stream)  # SIGTERM: the stream still runs to its end
        assert progress[-1].finished and progress[-1].done == 8
        assert server.proc.wait(timeout=WAIT) == 0
        log = server.log.read_text()
        assert "signal 15: draining calls in flight" in log and "stopped" in log
        wait_until(lambda: server.proc.poll() is not None, "the server to exit")
    finally:
        if server.proc.poll() is None:
            server.kill()


def test_undecodable_stream_message_does_not_block_shutdown(models_dir: Path) -> None:
    running = create_server(ServerConfig(models_dir, "127.0.0.1:0"))
    try:
        predict_stream = next(m for m in ceal_methods() if m.name.endswith("/PredictStream"))
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            assert raw_call(channel, predict_stream, b"\xff") == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        stopper = threading.Thread(target=running.stop, args=(1.0,), daemon=True)
        stopper.start()
        stopper.join(WAIT)
    assert not stopper.is_alive(), "server.stop() hung after an undecodable stream message"
