"""Dynamic batching across concurrent requests, as Triton does.

Requests for the same model version wait up to `max_delay` seconds for company; up to `max_images`
images run through the prefix in one call, and all their samples through the suffix together, in rounds of
chunks (`merged.run_merged`: each request keeps its own generator, so merging never changes its samples).

Admission control: the queue is bounded (a full queue raises `Overloaded` at once rather than growing
memory), and a request whose expected wait exceeds its deadline is refused at once too, instead of queueing
until the deadline passes. The expected wait is the backlog (Monte-Carlo samples queued or in progress) times
the measured seconds per sample (`ServiceRate`, an exponential average over engine runs); both refusals carry
`retry_after`, the seconds the backlog takes to drain. Until a first run is measured only the queue's limit
applies, and an idle engine admits any job (a slow outlier in the estimate cannot lock every caller
out). A cancelled call stops its engine work at the next chunk of samples (`JobFuture.abandoned`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ceal.service.engine.adaptive import AdaptiveRule
from ceal.service.engine.loaded import LoadedModel, RunTiming, Samples
from ceal.service.engine.merged import SuffixJob, run_merged
from ceal.service.errors import DeadlineExceeded, Overloaded, Unavailable

log = logging.getLogger(__name__)

MIN_RETRY_AFTER = 0.05  # seconds: the smallest retry delay suggested to a refused caller
UNKNOWN_RETRY_AFTER = 1.0  # seconds: suggested when no engine run has been measured yet
DEFAULT_HEADROOM = 1.5  # expected finish × this must fall before the deadline


class JobFuture(Future[Samples]):
    """A job's future; `cancel()` on a running job cannot stop the Future, so it also marks the job
    abandoned, and the engine stops at its next chunk of samples."""

    def __init__(self) -> None:
        super().__init__()
        self.abandoned = threading.Event()

    def cancel(self) -> bool:
        self.abandoned.set()
        return super().cancel()


class ServiceRate:
    """Measured engine speed: an exponential moving average of wall seconds per Monte-Carlo sample.

    `seconds_per_sample()` is None until a first run is observed. Tests inject a fixed estimate instead
    (any object with these two methods), so admission decisions do not depend on the machine's load."""

    def __init__(self, smoothing: float = 0.3) -> None:
        self.smoothing = smoothing
        self._value: float | None = None
        self._lock = threading.Lock()

    def observe(self, samples: int, seconds: float) -> None:
        """One engine run: `samples` Monte-Carlo samples (all images of the batch) in `seconds`."""
        if samples <= 0 or seconds < 0:
            return
        per = seconds / samples
        with self._lock:
            self._value = per if self._value is None else self._value + self.smoothing * (per - self._value)

    def seconds_per_sample(self) -> float | None:
        with self._lock:
            return self._value


@dataclass
class _Job:
    model: LoadedModel
    x: np.ndarray  # (1, C, h, w)
    samples: int
    rng: np.random.Generator
    deadline: float | None
    future: JobFuture = field(default_factory=JobFuture)
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

    def __init__(
        self,
        *,
        max_images: int = 8,
        max_delay: float = 0.005,
        max_queue: int = 64,
        rate: ServiceRate | None = None,
        clock: Callable[[], float] = time.monotonic,
        headroom: float = DEFAULT_HEADROOM,
    ) -> None:
        """max_queue: jobs waiting before `Overloaded`; rate: the service-rate estimate (measured by default);
        clock: monotonic seconds, the clock deadlines are given in (injected by tests); headroom: a job is
        admitted only if its expected finish times this still falls before its deadline (the estimate comes
        from past runs, and a burst slows the engine down before the average catches up)."""
        self.max_images = max_images
        self.max_delay = max_delay
        self.max_queue = max_queue
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self.stats = BatcherStats()
        self.rate = rate if rate is not None else ServiceRate()
        self.clock = clock
        self.headroom = headroom
        self._backlog = 0  # Monte-Carlo samples of the jobs queued or running
        self._backlog_lock = threading.Lock()  # taken inside `_closing`, never the other way round
        self._closed = False
        # Held while checking `_closed` and queueing, so no job can land behind close()'s stop marker,
        # where no worker would ever take it and its caller would wait forever.
        self._closing = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="ceal-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def backlog(self) -> int:
        """Monte-Carlo samples admitted and not yet finished (queued or running)."""
        with self._backlog_lock:
            return self._backlog

    def expected_wait(self) -> float | None:
        """Seconds a job admitted now waits before it starts (None: no engine run measured yet)."""
        per = self.rate.seconds_per_sample()
        return None if per is None else self.backlog * per

    def _admit(self, samples: int, deadline: float | None) -> None:
        """Raise Overloaded (with `retry_after`) unless a job of `samples` can be queued and, by the
        measured rate, finish before `deadline`. Called with `_closing` held."""
        per, backlog = self.rate.seconds_per_sample(), self.backlog
        drain = None if per is None else backlog * per
        retry_after = UNKNOWN_RETRY_AFTER if drain is None else max(drain, MIN_RETRY_AFTER)
        if self._queue.qsize() >= self.max_queue:
            raise Overloaded(
                f"inference queue is full ({self.max_queue} requests waiting); retry with backoff (after about "
                f"{retry_after:.2f} s), or send to another replica",
                retry_after=retry_after,
            )
        if deadline is None or per is None or drain is None or backlog == 0:
            return  # an idle engine takes any job: only a queue is refused, and the rate stays measured
        now = self.clock()
        if now >= deadline:
            raise DeadlineExceeded("the deadline passed before the request reached the inference queue")
        finish = drain + samples * per
        if now + finish * self.headroom > deadline:
            raise Overloaded(
                f"the server is busy: this request would finish in about {finish:.2f} s, after its deadline "
                f"(in {deadline - now:.2f} s); retry after {retry_after:.2f} s, give it a longer deadline, "
                "ask for fewer samples, or send to another replica",
                retry_after=retry_after,
                reason="deadline",
            )

    def check_admission(self, samples: int, deadline: float | None) -> None:
        """The decision `submit` would take now, without queueing: lets a caller refuse before it spends
        time decoding an image that would be refused anyway. `submit` decides again."""
        with self._closing:
            if self._closed:
                raise Unavailable("the server is shutting down; retry on another replica")
            self._admit(samples, deadline)

    def _finished(self, job: _Job) -> None:
        with self._backlog_lock:  # not `_closing`: close() holds it while waiting for the worker
            self._backlog -= job.samples

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
        """Queue one image's job; raises Overloaded (queue full, or the expected wait passes `deadline`),
        DeadlineExceeded (it has passed) or Unavailable (closing) at once. `deadline` is on `self.clock`."""
        job = _Job(model, x, samples, rng, deadline, adaptive=adaptive)
        with self._closing:
            if self._closed:
                raise Unavailable("the server is shutting down; retry on another replica", reason="SHUTTING_DOWN")
            self._admit(samples, deadline)
            with self._backlog_lock:
                self._backlog += samples
            self._queue.put_nowait(job)  # cannot be full: checked under the same lock, and only we put
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
        try:
            self._run_jobs(jobs)
        finally:
            for job in jobs:
                self._finished(job)

    def _run_jobs(self, jobs: list[_Job]) -> None:
        now, started_ns, started = self.clock(), time.time_ns(), time.perf_counter()
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
        suffix_jobs = [SuffixJob(j.samples, j.rng, j.adaptive, j.deadline, j.future.abandoned.is_set) for j in live]
        try:  # every request's suffix rows in one engine run per round (`merged.run_merged`)
            drawn = run_merged(model, features, suffix_jobs, clock=self.clock)
        except Exception as exc:
            log.exception("suffix run failed")
            for job in live:
                job.future.set_exception(exc)
            return
        finished_ns = time.time_ns()
        for i, (job, done) in enumerate(zip(live, suffix_jobs, strict=True)):
            if done.result is None:
                job.future.set_exception(done.error or RuntimeError("no samples drawn"))
                continue
            timing = RunTiming(job.queued_ns, started_ns, finished_ns, len(live), done.result.shape[1])
            job.future.set_result(Samples(done.result, descriptors[i : i + 1], timing))
        if drawn:
            self.rate.observe(drawn, time.perf_counter() - started)
