"""Helpers for the production-hardening tests: a model whose engine run can be held, images, raw channels."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from ceal.service.engine.loaded import LoadedModel, Samples
from ceal.service.server import Running
from tests.support.models import synth_dataset

WAIT = 30.0  # upper bound of every wait on the server; never a timing assertion


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    """One synthetic lesion image, uint8 (60, 80, 3)."""
    return synth_dataset(1, seed=11, height=60, width=80).images[0]


@dataclass
class Gate:
    """Holds the batcher's worker inside the model's prefix run until `release` is set."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    runs: int = 0


@contextmanager
def held_prefix(running: Running) -> Iterator[Gate]:
    """While inside, every prefix run of the served model waits for `gate.release` (a slow model)."""
    model: LoadedModel = running.registry.get()
    original = model.run_prefix
    gate = Gate()

    def gated(x: np.ndarray) -> dict[str, np.ndarray]:
        gate.runs += 1
        gate.entered.set()
        assert gate.release.wait(WAIT), "the test never released the model"
        return original(x)

    model.run_prefix = gated  # type: ignore[method-assign]
    try:
        yield gate
    finally:
        gate.release.set()
        model.run_prefix = original  # type: ignore[method-assign]


@contextmanager
def captured_jobs(running: Running) -> Iterator[list[Future[Samples]]]:
    """The futures of every job submitted to the batcher while inside, in order."""
    batcher = running.engine.batcher
    original = batcher.submit
    futures: list[Future[Samples]] = []

    def submit(*args: Any, **kwargs: Any) -> Future[Samples]:
        future = original(*args, **kwargs)
        futures.append(future)
        return future

    batcher.submit = submit  # type: ignore[method-assign]
    try:
        yield futures
    finally:
        batcher.submit = original  # type: ignore[method-assign]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll `condition` (bounded); fail naming `what` if it never holds."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    pytest.fail(f"timed out waiting for {what}")


@dataclass(frozen=True)
class Method:
    path: str  # "/ceal.v1.Segmentation/Predict"
    client_streaming: bool
    server_streaming: bool

    @property
    def name(self) -> str:
        return self.path.lstrip("/")


def ceal_methods() -> list[Method]:
    """Every RPC of the ceal API, from the generated descriptors (a new RPC shows up here by itself)."""
    from ceal.v1 import active_learning_pb2, segmentation_pb2

    out = []
    for module in (segmentation_pb2, active_learning_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                out.append(Method(f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming))
    return out


def raw_call(
    channel: Any,
    method: Method,
    payload: bytes | list[bytes],
    *,
    metadata: tuple[tuple[str, str], ...] = (),
    timeout: float = WAIT,
) -> Any:
    """Send `payload` as the request's bytes (no serializer; a list: one message each, for request streams)
    and return the status code the call ended with."""
    import grpc

    payloads = payload if isinstance(payload, list) else [payload]
    try:
        if method.client_streaming and method.server_streaming:
            call = channel.stream_stream(method.path, request_serializer=None, response_deserializer=None)
            list(call(iter(payloads), timeout=timeout, metadata=metadata))
        elif method.client_streaming:
            call = channel.stream_unary(method.path, request_serializer=None, response_deserializer=None)
            call(iter(payloads), timeout=timeout, metadata=metadata)
        elif method.server_streaming:
            call = channel.unary_stream(method.path, request_serializer=None, response_deserializer=None)
            list(call(payload, timeout=timeout, metadata=metadata))
        else:
            call = channel.unary_unary(method.path, request_serializer=None, response_deserializer=None)
            call(payload, timeout=timeout, metadata=metadata)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK
