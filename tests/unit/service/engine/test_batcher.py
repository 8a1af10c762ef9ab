"""The dynamic batcher: concurrent requests share engine runs, results as if alone, bounded queue, deadlines,
shutdown. No timing is asserted: a `Blocker` model holds the worker until the test has queued what it needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

import numpy as np
import numpy.typing as npt
import pytest

from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine, PredictOptions, finish
from ceal.service.engine.loaded import LoadedModel, Samples
from ceal.service.engine.preprocess import prepare
from ceal.service.errors import DeadlineExceeded, Overloaded, Unavailable
from tests.unit.service.engine.conftest import TinyModel

F32 = npt.NDArray[np.float32]
WAIT = 60.0  # seconds a test waits for the worker before failing: generous, the machine is shared


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    stop = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > stop:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.001)


class Blocker:
    """Stands in for a LoadedModel: its prefix run waits until `release()`, so the worker is held busy."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._gate = threading.Event()
        self.prefix_batches: list[int] = []

    def release(self) -> None:
        self._gate.set()

    def run_prefix(self, x: F32) -> dict[str, F32]:
        self.prefix_batches.append(len(x))
        self.entered.set()
        if not self._gate.wait(WAIT):
            raise AssertionError("the test never released the blocker")
        return {"features": x}

    def descriptors(self, features: dict[str, F32]) -> F32:
        return np.zeros((len(features["features"]), 4), np.float32)

    max_rows = 32

    def run_suffix(self, features: dict[str, F32], samples: int, rng: np.random.Generator, **_: object) -> F32:
        return np.zeros((len(features["features"]), samples, 1, 2, 2), np.float32)

    def run_suffix_rows(self, features: dict[str, F32], counts: list[int], rngs: object) -> list[F32]:
        return [np.zeros((k, 1, 2, 2), np.float32) for k in counts]

    def hold(self, batcher: DynamicBatcher) -> Future[Samples]:
        """Submit one job and return once the worker is stuck in it."""
        future = batcher.submit(
            cast(LoadedModel, self), np.zeros((1, 1, 2, 2), np.float32), 1, np.random.default_rng(0), None
        )
        _wait_until(self.entered.is_set, "the worker to pick up the blocking job")
        return future


@pytest.fixture
def blocker() -> Iterator[Blocker]:
    gate = Blocker()
    yield gate
    gate.release()  # never leave a worker stuck


def _pixels(tiny_model: TinyModel, i: int) -> npt.NDArray[np.uint8]:
    return np.asarray(tiny_model.images[i % len(tiny_model.images)], dtype=np.uint8)


def test_concurrent_predictions_share_runs_and_equal_unbatched(
    tiny_model: TinyModel, loaded_model: LoadedModel, blocker: Blocker
) -> None:
    n, samples = 6, 8
    batcher = DynamicBatcher(max_images=8, max_delay=0.0, max_queue=16)
    engine = Engine(batcher)
    try:
        held = blocker.hold(batcher)
        with ThreadPoolExecutor(n) as pool:
            futures = [
                pool.submit(
                    engine.predict,
                    loaded_model,
                    _pixels(tiny_model, i),
                    PredictOptions(samples=samples, seed=i, maps=("probability", "variance")),
                )
                for i in range(n)
            ]
            _wait_until(lambda: batcher.depth == n, f"{n} requests to queue")
            blocker.release()
            results = [f.result(timeout=WAIT) for f in futures]
        held.result(timeout=WAIT)
    finally:
        batcher.close()
    assert batcher.stats.runs == 2 < n  # the blocker's run, then all n requests in one prefix run
    assert batcher.stats.largest_batch == n and batcher.stats.images == n + 1
    for i, got in enumerate(results):
        pixels = _pixels(tiny_model, i)
        opts = PredictOptions(samples=samples, seed=i, maps=("probability", "variance"))
        alone = loaded_model.sample(prepare(pixels, loaded_model.meta)[None], samples, np.random.default_rng(i))
        want = finish(loaded_model, pixels.shape[:2], alone.probabilities[0], alone.descriptors[0], opts)
        # Same seed, same masks; only the prefix ran in a batch of n instead of 1.
        np.testing.assert_allclose(got.probability, want.probability, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.maps["variance"], want.maps["variance"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.descriptor, want.descriptor, rtol=0, atol=1e-6)
        assert got.maps["variance"].max() > 0
    # The images differ, so results landing on the wrong request would have been caught above.
    assert not np.allclose(results[0].probability, results[1].probability, atol=1e-3)


def test_a_full_queue_refuses_at_once_and_queued_work_still_runs(blocker: Blocker) -> None:
    batcher = DynamicBatcher(max_images=1, max_delay=0.0, max_queue=1)
    try:
        held = blocker.hold(batcher)
        x = np.zeros((1, 1, 2, 2), np.float32)
        queued = batcher.submit(cast(LoadedModel, blocker), x, 1, np.random.default_rng(1), None)
        with pytest.raises(Overloaded, match=r"queue is full .*retry with backoff"):
            batcher.submit(cast(LoadedModel, blocker), x, 1, np.random.default_rng(2), None)
        blocker.release()
        assert held.result(timeout=WAIT).probabilities.shape == (1, 1, 1, 2, 2)
        assert queued.result(timeout=WAIT).probabilities.shape == (1, 1, 1, 2, 2)
    finally:
        batcher.close()
    assert blocker.prefix_batches == [1, 1]


def test_a_deadline_that_passes_while_queued_is_exceeded_without_running(
    loaded_model: LoadedModel, model_inputs: F32, blocker: Blocker
) -> None:
    batcher = DynamicBatcher(max_delay=0.0)
    try:
        blocker.hold(batcher)
        deadline = time.monotonic() + 0.05
        late = batcher.submit(loaded_model, model_inputs[:1], 4, np.random.default_rng(0), deadline)
        _wait_until(lambda: time.monotonic() > deadline, "the deadline to pass")
        blocker.release()
        with pytest.raises(DeadlineExceeded, match="deadline passed while the request was queued"):
            late.result(timeout=WAIT)
    finally:
        batcher.close()
    assert batcher.stats.runs == 1  # only the blocker's: the late request never reached the model


def test_a_deadline_between_suffix_chunks_stops_the_sampling(loaded_model: LoadedModel, model_inputs: F32) -> None:
    features = loaded_model.run_prefix(model_inputs[:1])
    ticks = iter([0.0, 10.0])  # the clock jumps past the deadline after the first chunk
    with pytest.raises(DeadlineExceeded, match=f"after {loaded_model.max_rows} of 40"):
        loaded_model.run_suffix(features, 40, np.random.default_rng(0), deadline=5.0, clock=lambda: next(ticks))


def test_engine_predict_raises_the_deadline_to_the_caller(tiny_model: TinyModel, loaded_model: LoadedModel) -> None:
    engine = Engine(DynamicBatcher(max_delay=0.0))
    try:
        with pytest.raises(DeadlineExceeded):
            engine.predict(
                loaded_model, _pixels(tiny_model, 0), PredictOptions(samples=4), deadline=time.monotonic() - 1.0
            )
    finally:
        engine.batcher.close()


def test_close_serves_what_was_queued_then_refuses_with_unavailable(
    tiny_model: TinyModel, loaded_model: LoadedModel, blocker: Blocker
) -> None:
    batcher = DynamicBatcher(max_delay=0.0)
    x = prepare(_pixels(tiny_model, 0), loaded_model.meta)[None]
    blocker.hold(batcher)
    queued = batcher.submit(loaded_model, x, 4, np.random.default_rng(0), None)
    closing = threading.Thread(target=batcher.close)
    closing.start()
    _wait_until(lambda: batcher.depth == 2, "close() to queue its stop marker behind the request")
    blocker.release()
    closing.join(WAIT)
    assert not closing.is_alive()
    assert queued.result(timeout=WAIT).probabilities.shape == (1, 4, 1, *x.shape[2:])
    with pytest.raises(Unavailable, match="shutting down"):
        batcher.submit(loaded_model, x, 4, np.random.default_rng(0), None)
    with pytest.raises(Unavailable, match="shutting down"):
        Engine(batcher).predict(loaded_model, _pixels(tiny_model, 0), PredictOptions(samples=4))


def test_a_submit_racing_close_is_served_never_stranded(loaded_model: LoadedModel, model_inputs: F32) -> None:
    """A submit that passed the closed check while close() ran must not queue behind the stop marker.

    Before the fix, close() could finish (worker gone) while the submit was between its check and its put;
    the request then sat in the queue forever and its caller waited forever.
    """
    batcher = DynamicBatcher(max_delay=0.0)
    real_put = batcher._queue.put_nowait  # the test holds one submit inside its put
    in_put, go = threading.Event(), threading.Event()

    def held_put(item: object) -> None:
        in_put.set()
        go.wait(WAIT)
        real_put(item)  # type: ignore[arg-type]

    batcher._queue.put_nowait = held_put  # type: ignore[method-assign]
    submitted: list[Future[Samples]] = []
    submitter = threading.Thread(
        target=lambda: submitted.append(
            batcher.submit(loaded_model, model_inputs[:1], 4, np.random.default_rng(0), None)
        )
    )
    submitter.start()
    assert in_put.wait(WAIT)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    closer.join(0.5)  # time for a close() that ignores the submit in progress to finish
    go.set()
    submitter.join(WAIT)
    closer.join(WAIT)
    assert not closer.is_alive() and len(submitted) == 1
    assert submitted[0].done()  # close() returns only after the worker served it
    assert submitted[0].result().probabilities.shape[:2] == (1, 4)
