"""Dynamic batching across concurrent requests, as Triton does.

Requests for the same model version wait up to `max_delay` seconds for company; up to `max_images`
images run through the prefix in one call, and all their samples through the suffix in chunks. The queue
is bounded: a full queue raises `Overloaded` at once rather than growing memory.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ceal.service.engine.adaptive import AdaptiveRule, run_samples
from ceal.service.engine.loaded import LoadedModel, RunTiming, Samples
from ceal.service.errors import DeadlineExceeded, Overloaded, ServiceError, Unavailable

log = logging.getLogger(__name__)


@dataclass
class _Job:
    model: LoadedModel
    x: np.ndarray  # (1, C, h, w)
    samples: int
    rng: np.random.Generator
    deadline: float | None
    future: Future[Samples] = field(default_factory=Future)
    queued_ns: int = field(default_factory=time.time_ns)
    adaptive: AdaptiveRule | None = None  # None: exactly `samples`; else stop early once the score is precise


@dataclass
class BatcherStats:
    """Counters: engine runs (prefix calls), images served, largest batch."""

    runs: int = 0
    images: int = 0
    largest_batch: int = 0


class DynamicBatcher:
    """One worker thread draining a bounded queue; `submit` blocks the caller, not the worker."""

    def __init__(self, *, max_images: int = 8, max_delay: float = 0.005, max_queue: int = 64) -> None:
        self.max_images = max_images
        self.max_delay = max_delay
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self.stats = BatcherStats()
        self._closed = False
        # Held while checking `_closed` and queueing, so no job can land behind close()'s stop marker,
        # where no worker would ever take it and its caller would wait forever.
        self._closing = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="ceal-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(
        self,
        model: LoadedModel,
        x: np.ndarray,
        samples: int,
        rng: np.random.Generator,
        deadline: float | None,
        *,
        adaptive: AdaptiveRule | None = None,
    ) -> Future[Samples]:
        job = _Job(model, x, samples, rng, deadline, adaptive=adaptive)
        with self._closing:
            if self._closed:
                raise Unavailable("the server is shutting down; retry on another replica", reason="SHUTTING_DOWN")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise Overloaded(
                    f"inference queue is full ({self._queue.maxsize} requests waiting); retry with backoff"
                ) from None
        return job.future

    def close(self) -> None:
        """Serve what is queued, then stop the worker; later submits raise Unavailable. Idempotent."""
        with self._closing:
            if not self._closed:
                self._closed = True
                self._queue.put(None)  # may wait for room: the worker drains the queue without the lock
        self._thread.join(timeout=30)

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, stop = [first], False
        until = time.monotonic() + self.max_delay
        while len(jobs) < self.max_images:
            timeout = until - time.monotonic()
            try:
                job = self._queue.get(timeout=max(timeout, 0)) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            jobs.append(job)
        return jobs, stop

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._collect(first)
            by_model: dict[int, list[_Job]] = {}
            for job in jobs:
                by_model.setdefault(id(job.model), []).append(job)
            for group in by_model.values():
                self._run(group)
            if stop:
                return

    def _run(self, jobs: list[_Job]) -> None:
        now, started_ns = time.monotonic(), time.time_ns()
        live = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():  # cancelled while queued: its slot is free
                continue
            if job.deadline is not None and now > job.deadline:
                job.future.set_exception(DeadlineExceeded("deadline passed while the request was queued"))
                continue
            live.append(job)
        if not live:
            return
        model = live[0].model
        try:
            features = model.run_prefix(np.concatenate([j.x for j in live]))
            descriptors = model.descriptors(features)
            self.stats.runs += 1
            self.stats.images += len(live)
            self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        except Exception as exc:
            for job in live:
                job.future.set_exception(exc)
            return
        for i, job in enumerate(live):
            try:
                one = {k: v[i : i + 1] for k, v in features.items()}
                probs = run_samples(model, one, job.samples, job.rng, job.adaptive, deadline=job.deadline)
                timing = RunTiming(job.queued_ns, started_ns, time.time_ns(), len(live), probs.shape[1])
                job.future.set_result(Samples(probs, descriptors[i : i + 1], timing))
            except ServiceError as exc:
                job.future.set_exception(exc)
            except Exception as exc:
                log.exception("suffix run failed")
                job.future.set_exception(exc)
