"""A stand-in Segmentation server that records what the SDK sends: deadlines, attempts, metadata.

For what the real server cannot show: how many attempts a retried call made and which deadline arrived.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc

from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc

# gRPC sends a deadline as a coarse timeout, rounded up: the server may see up to a second more than was set.
WIRE_ROUNDING_S = 1.5


class Recording(seg_grpc.SegmentationServicer):
    """ListModels fails with UNAVAILABLE for its first `unavailable` calls; every call records its deadline."""

    def __init__(self, unavailable: int = 0) -> None:
        self.unavailable = unavailable
        self.attempts = 0
        self.time_remaining: list[float | None] = []
        self.metadata: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def _record(self, context: grpc.ServicerContext) -> int:
        with self._lock:
            self.attempts += 1
            self.time_remaining.append(context.time_remaining())
            self.metadata.append({k: v for k, v in context.invocation_metadata()})
            return self.attempts

    def ListModels(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self._record(context) <= self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return seg_pb.ListModelsResponse()

    def PredictStream(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        self._record(context)
        for request in request_iterator:
            yield seg_pb.PredictResponse(request_id=request.request_id)


def dead_address() -> str:
    """A loopback "host:port" nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def recording_server(servicer: Recording) -> Iterator[str]:
    """Serve `servicer` on 127.0.0.1:0; yields "127.0.0.1:PORT"."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    seg_grpc.add_SegmentationServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()
