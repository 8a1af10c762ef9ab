"""--max-connection-age: the server sends GOAWAY after the age, the client reconnects by itself, and no call
fails; a new connection is what lets calls reach replicas the autoscaler added."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import grpc
import pytest

from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from tests.support.server import in_process


def test_connections_are_recycled_without_failing_calls(
    models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="ceal.audit"),
        in_process(models_dir, audit=True, max_connection_age=0.5, max_connection_age_grace=0.5) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = seg_grpc.SegmentationStub(channel)
        peers: set[str] = set()
        give_up = time.monotonic() + 60  # a bound, not a timing assertion: GOAWAY comes after ~0.5 s
        while len(peers) < 3 and time.monotonic() < give_up:
            stub.ListModels(seg_pb.ListModelsRequest(), timeout=30, wait_for_ready=True)  # never fails
            records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ceal.audit"]
            peers = {r["peer"] for r in records if r["code"] == "OK"}
    assert len(peers) >= 3, peers  # three client ports: the one connection was replaced twice
