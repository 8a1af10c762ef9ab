"""What a servicer reads from, and ties to, its gRPC call: the call's deadline, and queued engine work
cancelled when the call ends early. One module, shared by every servicer."""

from __future__ import annotations

import time
import weakref
from concurrent.futures import Future
from typing import Any

import grpc

__all__ = ["cancel_with", "deadline_of"]


def cancel_with(context: grpc.ServicerContext, future: Future[Any]) -> None:
    """Cancel `future` (queued engine work) when the call ends early: its queue slot is freed, not run.

    The callback holds the future weakly: a long PredictStream registers one per image and must not keep
    every finished result alive until the stream ends.
    """
    ref = weakref.ref(future)

    def cancel() -> None:
        queued = ref()
        if queued is not None:
            queued.cancel()

    if not context.add_callback(cancel):  # the call already ended
        future.cancel()


def deadline_of(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    # Without a client deadline gRPC reports an effectively infinite time remaining.
    return None if remaining is None or remaining > 1e7 else time.monotonic() + remaining
