"""Locust load test: gRPC users mixing Predict, GetQueryList and SubmitLabel against a local ceal server.

    locust -f tests/load/locustfile.py --headless -u 8 -r 4 -t 30s --host 127.0.0.1:PORT

`tests/load/run_load.py` starts a server with a small model and a scored pool and runs this for you. The
environment says which pool and image size: CEAL_LOAD_POOL, CEAL_LOAD_IMAGE ("HxW"), CEAL_LOAD_SAMPLES (T).
Only 127.0.0.1 is accepted as host. Each call's latency and failure go to locust's statistics through
`events.request.fire`; the SDK's request builders make the messages, the raw stubs send them (so the
statistics time one RPC, not the SDK's retries).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import grpc.experimental.gevent as grpc_gevent
import numpy as np
from locust import User, between, events, task
from locust.env import Environment

from ceal.client import requests
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2_grpc as seg_grpc

grpc_gevent.init_gevent()  # locust runs users as gevent greenlets; gRPC must cooperate with them

POOL = os.environ.get("CEAL_LOAD_POOL", "load")
HEIGHT, WIDTH = (int(v) for v in os.environ.get("CEAL_LOAD_IMAGE", "96x128").split("x"))
SAMPLES = int(os.environ.get("CEAL_LOAD_SAMPLES", "8"))
TIMEOUT = 60.0


def _local_only(environment: Environment, **_: Any) -> None:
    host = environment.host or ""
    if not host.startswith("127.0.0.1:"):
        raise SystemExit(f"this load test only runs against 127.0.0.1:PORT, not {host!r}")


events.init.add_listener(_local_only)  # type: ignore[no-untyped-call]


class CealUser(User):  # type: ignore[misc]
    """An annotator's client: segments images, asks what to label next, submits masks."""

    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.channel = grpc.insecure_channel(self.host)
        self.segmentation = seg_grpc.SegmentationStub(self.channel)
        self.active_learning = al_grpc.ActiveLearningStub(self.channel)
        self.annotator = f"load-{uuid.uuid4().hex[:8]}"
        self.rng = np.random.default_rng()
        self.leased: list[str] = []

    def on_stop(self) -> None:
        self.channel.close()

    def _call(self, name: str, method: Callable[..., Any], request: Any) -> Any:
        started = time.perf_counter()
        response, error = None, None
        try:
            response = method(request, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            error = exc
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=response.ByteSize() if response is not None else 0,
            exception=error,
            context={},
        )
        return response

    @task(3)
    def predict(self) -> None:
        image = self.rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        self._call("Predict", self.segmentation.Predict, requests.predict_request(image, samples=SAMPLES))

    @task(2)
    def get_query_list(self) -> None:
        request = requests.query_list_request(
            pool=POOL,
            strategy="bald",
            k=3,
            model="",
            annotator=self.annotator,
            budget_seconds=0.0,
            lease_seconds=60,
            series=False,
            round_=0,
            seed=0,
            max_pseudo_labels=0,
        )
        response = self._call("GetQueryList", self.active_learning.GetQueryList, request)
        if response is not None:
            self.leased = [item.image_id for item in response.items]

    @task(1)
    def submit_label(self) -> None:
        if not self.leased:
            return self.get_query_list()
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[HEIGHT // 4 : 3 * HEIGHT // 4, WIDTH // 4 : 3 * WIDTH // 4] = 1
        request = requests.submit_label_request(
            self.leased.pop(),
            mask,
            pool=POOL,
            annotator=self.annotator,
            source="human",
            seconds_spent=float(self.rng.uniform(20, 90)),
            idempotency_key=None,
        )
        self._call("SubmitLabel", self.active_learning.SubmitLabel, request)
        return None
