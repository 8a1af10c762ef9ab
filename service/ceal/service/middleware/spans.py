"""Per-call hooks for the core: child spans and engine metrics, free when telemetry is off.

The telemetry interceptor puts a `CallTelemetry` in a context variable for the duration of each call;
`child_span` and `record_run` read it. Without telemetry (or outside a call, e.g. background rescoring)
the variable is empty: `child_span` returns a shared no-op context manager and `record_run` returns at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.metrics import Counter, Histogram

if TYPE_CHECKING:
    from ceal.service.engine.loaded import RunTiming

__all__ = ["CallTelemetry", "active", "child_span", "record_run"]

_NANOS = 1e-9


@dataclass(frozen=True)
class CallTelemetry:
    """What the core records into during one call."""

    tracer: trace.Tracer
    batch_size: Histogram  # images per engine run
    mc_samples: Counter  # Monte-Carlo samples drawn
    mc_rate: Histogram  # Monte-Carlo samples per second of one image's run


_ACTIVE: ContextVar[CallTelemetry | None] = ContextVar("ceal_call_telemetry", default=None)
_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()


@contextlib.contextmanager
def active(telemetry: CallTelemetry) -> Iterator[None]:
    """Make `telemetry` the current call's for the block (the interceptor does this)."""
    token = _ACTIVE.set(telemetry)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def child_span(name: str) -> AbstractContextManager[object]:
    """A child span of the current call's span named `name` (decode, scoring, store, ...), or a no-op."""
    current = _ACTIVE.get()
    if current is None:
        return _NOTHING
    return current.tracer.start_as_current_span(name)


def record_run(timing: RunTiming | None) -> None:
    """One image's way through the batcher → `queue` and `inference` spans, batch size and MC-rate metrics.

    The batcher's worker thread measured the times; the spans are made here, on the call's thread, with
    those times, so they hang under the call's span.
    """
    current = _ACTIVE.get()
    if current is None or timing is None:
        return
    attributes = {"ceal.batch_size": timing.batch_size, "ceal.samples": timing.samples}
    current.tracer.start_span("queue", start_time=timing.queued_ns).end(end_time=timing.started_ns)
    current.tracer.start_span("inference", start_time=timing.started_ns, attributes=attributes).end(
        end_time=timing.finished_ns
    )
    current.batch_size.record(timing.batch_size)
    current.mc_samples.add(timing.samples)
    seconds = (timing.finished_ns - timing.started_ns) * _NANOS
    if seconds > 0:
        current.mc_rate.record(timing.samples / seconds)
