"""Admission control in the dynamic batcher: refusals decided from the backlog and a service-rate estimate.

The estimate is injected (`FixedRate`) and so is the clock, so every decision here is the same on any machine
and under any load; a `Blocker` model holds the worker so the backlog is exactly what the test queued.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import numpy as np
import pytest

from ceal.service.engine.batcher import MIN_RETRY_AFTER, UNKNOWN_RETRY_AFTER, DynamicBatcher, ServiceRate
from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import DeadlineExceeded, Overloaded
from tests.unit.service.engine.test_batcher import WAIT, Blocker, _wait_until

X = np.zeros((1, 1, 2, 2), np.float32)
NOW = 1000.0  # the injected clock's time (seconds)


class FixedRate(ServiceRate):
    """A service-rate estimate that does not move: `per` seconds per Monte-Carlo sample (None: unmeasured)."""

    def __init__(self, per: float | None) -> None:
        super().__init__()
        self.per = per

    def observe(self, samples: int, seconds: float) -> None:
        pass

    def seconds_per_sample(self) -> float | None:
        return self.per


@pytest.fixture
def blocker() -> Iterator[Blocker]:
    gate = Blocker()
    yield gate
    gate.release()


def _batcher(per: float | None, max_queue: int = 8, headroom: float = 1.0) -> DynamicBatcher:
    return DynamicBatcher(
        max_images=1, max_delay=0.0, max_queue=max_queue, rate=FixedRate(per), clock=lambda: NOW, headroom=headroom
    )


def _submit(batcher: DynamicBatcher, blocker: Blocker, samples: int, deadline: float | None) -> object:
    return batcher.submit(cast(LoadedModel, blocker), X, samples, np.random.default_rng(0), deadline)


def test_a_request_that_would_miss_its_deadline_is_refused_at_once_with_a_retry_delay(blocker: Blocker) -> None:
    batcher = _batcher(per=0.5)  # 0.5 s per sample
    try:
        held = blocker.hold(batcher)  # 1 sample in progress
        queued = _submit(batcher, blocker, 8, None)  # 8 more queued: backlog 9 samples = 4.5 s
        assert batcher.backlog == 9 and batcher.expected_wait() == pytest.approx(4.5)
        # 4.5 s of backlog + 2 samples (1 s) = 5.5 s > the 5 s left: refused, not queued
        with pytest.raises(Overloaded, match=r"would finish in about 5\.50 s.*retry after 4\.50 s") as info:
            _submit(batcher, blocker, 2, NOW + 5.0)
        assert info.value.retry_after == pytest.approx(4.5) and info.value.reason == "deadline"
        assert "longer deadline" in str(info.value) and "fewer samples" in str(info.value)
        assert batcher.depth == 1 and batcher.backlog == 9  # the refused job took no room
        # the same request with 6 s left fits (5.5 s <= 6 s)
        accepted = _submit(batcher, blocker, 2, NOW + 6.0)
        assert batcher.backlog == 11
        blocker.release()
        for future in (held, queued, accepted):
            future.result(timeout=WAIT)  # type: ignore[attr-defined]
        _wait_until(lambda: batcher.backlog == 0, "the backlog to drain")
    finally:
        batcher.close()


def test_headroom_refuses_a_request_that_would_finish_just_before_its_deadline(blocker: Blocker) -> None:
    batcher = _batcher(per=0.5, headroom=1.5)
    try:
        blocker.hold(batcher)  # backlog 1 sample (0.5 s)
        with pytest.raises(Overloaded):  # 0.5 s + 1 s = 1.5 s expected; × 1.5 = 2.25 s > 2 s
            _submit(batcher, blocker, 2, NOW + 2.0)
        _submit(batcher, blocker, 2, NOW + 2.5)  # 2.25 s <= 2.5 s: admitted
        assert batcher.backlog == 3
    finally:
        blocker.release()
        batcher.close()


def test_a_full_queue_refuses_with_the_drain_time_as_retry_delay(blocker: Blocker) -> None:
    batcher = _batcher(per=0.25, max_queue=2)
    try:
        blocker.hold(batcher)
        _submit(batcher, blocker, 4, None)
        _submit(batcher, blocker, 3, None)
        with pytest.raises(Overloaded, match="queue is full") as info:
            _submit(batcher, blocker, 1, None)  # no deadline: refused by the queue's limit alone
        assert info.value.reason == "queue" and info.value.retry_after == pytest.approx(8 * 0.25)
    finally:
        blocker.release()
        batcher.close()


def test_without_a_measured_rate_only_the_queue_limit_applies(blocker: Blocker) -> None:
    batcher = _batcher(per=None, max_queue=1)
    try:
        blocker.hold(batcher)
        _submit(batcher, blocker, 50, NOW + 0.001)  # no estimate yet: admitted whatever its deadline
        with pytest.raises(Overloaded) as info:
            _submit(batcher, blocker, 1, None)
        assert info.value.retry_after == UNKNOWN_RETRY_AFTER
    finally:
        blocker.release()
        batcher.close()


def test_an_idle_engine_admits_even_a_slow_estimate(blocker: Blocker) -> None:
    # A slow outlier in the estimate must not lock every caller out: with nothing queued, a job runs.
    batcher = _batcher(per=100.0)
    try:
        future = _submit(batcher, blocker, 4, NOW + 1.0)
        blocker.release()
        future.result(timeout=WAIT)  # type: ignore[attr-defined]
    finally:
        batcher.close()


def test_a_deadline_already_past_is_deadline_exceeded_not_overloaded(blocker: Blocker) -> None:
    batcher = _batcher(per=0.01)
    try:
        blocker.hold(batcher)
        with pytest.raises(DeadlineExceeded):
            _submit(batcher, blocker, 1, NOW - 1.0)
    finally:
        blocker.release()
        batcher.close()


def test_the_retry_delay_is_never_below_the_floor(blocker: Blocker) -> None:
    batcher = _batcher(per=1e-6, max_queue=1)
    try:
        blocker.hold(batcher)
        _submit(batcher, blocker, 1, None)
        with pytest.raises(Overloaded) as info:
            _submit(batcher, blocker, 1, None)
        assert info.value.retry_after == MIN_RETRY_AFTER
    finally:
        blocker.release()
        batcher.close()


def test_service_rate_is_a_moving_average_of_seconds_per_sample() -> None:
    rate = ServiceRate(smoothing=0.5)
    assert rate.seconds_per_sample() is None
    rate.observe(10, 1.0)  # 0.1 s per sample
    assert rate.seconds_per_sample() == pytest.approx(0.1)
    rate.observe(10, 3.0)  # 0.3: halfway
    assert rate.seconds_per_sample() == pytest.approx(0.2)
    rate.observe(0, 5.0)  # nothing drawn: ignored
    assert rate.seconds_per_sample() == pytest.approx(0.2)


def test_the_batcher_measures_its_rate_from_real_runs(blocker: Blocker) -> None:
    batcher = DynamicBatcher(max_images=1, max_delay=0.0)
    try:
        future = batcher.submit(cast(LoadedModel, blocker), X, 3, np.random.default_rng(0), None)
        blocker.release()
        future.result(timeout=WAIT)
        _wait_until(lambda: batcher.rate.seconds_per_sample() is not None, "the run to be measured")
        per = batcher.rate.seconds_per_sample()
        assert per is not None and per >= 0.0
    finally:
        batcher.close()


def test_cancelling_a_running_job_stops_it_at_the_next_chunk(blocker: Blocker) -> None:
    chunks: list[list[int]] = []

    def run_suffix_rows(features: object, counts: list[int], rngs: object) -> list[np.ndarray]:
        chunks.append(list(counts))  # the batcher checks cancellation before every round of chunks
        return [np.zeros((k, 1, 2, 2), np.float32) for k in counts]

    blocker.run_suffix_rows = run_suffix_rows  # type: ignore[method-assign,assignment]
    batcher = DynamicBatcher(max_images=1, max_delay=0.0)
    try:
        future = batcher.submit(cast(LoadedModel, blocker), X, 8, np.random.default_rng(0), None)
        _wait_until(blocker.entered.is_set, "the worker to take the job")
        assert not future.cancel()  # running: the Future cannot be cancelled ...
        blocker.release()
        _wait_until(lambda: batcher.backlog == 0, "the job to end")
        assert chunks == []  # ... but its samples were never drawn
        with pytest.raises(Exception, match="cancelled after 0 of 8"):
            future.result(timeout=WAIT)
    finally:
        batcher.close()
