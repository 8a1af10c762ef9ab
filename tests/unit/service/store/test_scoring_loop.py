"""`PoolScorer.score`'s claim → score → store loop, on every backend, with the engine replaced by fake numbers.

Several scorers on one store must score each image once; one that finds everything claimed waits for the
others, and takes over the claims of a scorer that died once they expire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from ceal.service.engine.adaptive import AdaptiveRule
from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import DeadlineExceeded
from ceal.service.pool.scoring import PoolScorer, Progress, SamplingPlan, scoring_rule
from ceal.service.store import NewImage, PoolStore, ScoreRow

Pixels = Callable[..., np.ndarray]
Advance = Callable[[float], None]
MODEL = cast(LoadedModel, SimpleNamespace(meta=SimpleNamespace(name="unet", version=1)))


class FakeScorer(PoolScorer):
    """A PoolScorer whose batches are scored with fixed numbers and recorded, 3 images a batch."""

    def __init__(self, store: PoolStore, sleep: Callable[[float], None] = time.sleep) -> None:
        engine = cast(Any, SimpleNamespace(batcher=SimpleNamespace(max_images=3)))
        super().__init__(store, engine, claim_seconds=30.0, poll_seconds=1.0, sleep=sleep)
        self.scored: list[str] = []

    def _score_batch(
        self,
        pool: str,
        model: LoadedModel,
        ids: list[str],
        plan: SamplingPlan,
        rng: np.random.Generator,
    ) -> Callable[[], tuple[list[ScoreRow], int]]:
        self.scored.extend(ids)
        time.sleep(0.001)  # let other threads in between batches
        rows = [ScoreRow(i, model.meta.name, model.meta.version, 0.5, 0.1, 0.01, 0.9, 9.0, 1, 0.2) for i in ids]
        return lambda: (rows, plan.samples * len(ids))


def _pool(store: PoolStore, pixels: Pixels, n: int) -> list[str]:
    return [image_id for image_id, _ in store.register_images("p", [NewImage(pixels(i)) for i in range(n)])]


def _servicer(store: PoolStore, samples: int = 20, **rescore: Any) -> Any:
    """An ActiveLearningServicer on `store` alone (no registry or engine), not rescoring on its own."""
    from ceal.service.servicers.active_learning import ActiveLearningServicer

    return ActiveLearningServicer(
        store,
        cast(Any, None),
        cast(Any, None),
        default_samples=samples,
        max_pixels=64 * 64,
        max_message_bytes=1 << 20,
        lease_seconds=60.0,
        rescore_on_new_version=False,
        **{"rescore_tolerance": 0.0, "rescore_min_samples": 0, **rescore},
    )


def _check_progress(messages: list[Progress], total: int) -> None:
    assert messages[0].done == 0 and messages[-1].finished and messages[-1].done == total
    assert all(m.total == total for m in messages)
    assert [m.done for m in messages] == sorted(m.done for m in messages)  # never goes back
    assert [m.finished for m in messages].count(True) == 1


def test_scores_what_is_missing_with_progress(store: PoolStore, pixels: Pixels) -> None:
    ids = _pool(store, pixels, 8)
    store.put_scores("p", [ScoreRow(i, "unet", 1, 0.5, 0.1, 0.01, 0.9, 9.0, 1, 0.2) for i in ids[:2]])
    scorer = FakeScorer(store)
    messages = list(scorer.score("p", MODEL, SamplingPlan(4)))
    _check_progress(messages, 6)
    assert messages[0].fresh == 2
    assert sorted(scorer.scored) == sorted(ids[2:])
    assert store.needs_scoring("p", "unet", 1) == []
    (again,) = scorer.score("p", MODEL, SamplingPlan(4))
    assert (again.done, again.total, again.fresh, again.finished) == (0, 0, 8, True)


def test_scorers_running_at_once_score_each_image_once(store: PoolStore, pixels: Pixels) -> None:
    ids = _pool(store, pixels, 30)
    scorers = [FakeScorer(store, sleep=lambda s: time.sleep(0.01)) for _ in range(3)]
    finals: list[list[Progress]] = []
    start = threading.Barrier(len(scorers))

    def run(scorer: FakeScorer) -> None:
        start.wait()
        finals.append(list(scorer.score("p", MODEL, SamplingPlan(4))))

    threads = [threading.Thread(target=run, args=(scorer,)) for scorer in scorers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    scored = [image_id for scorer in scorers for image_id in scorer.scored]
    assert sorted(scored) == sorted(ids)  # every image exactly once, over all three
    assert len(finals) == 3
    for messages in finals:  # every caller saw its share of the pool finish, whoever scored what
        # total is what needed scoring when the call started: 30, or less for a caller whose first query ran
        # after another had stored a batch (a loaded machine can delay a thread past the barrier)
        assert 0 <= messages[0].total <= 30
        _check_progress(messages, messages[0].total)


def test_a_dead_scorers_claims_are_taken_over_when_they_expire(
    store: PoolStore, pixels: Pixels, advance: Advance
) -> None:
    ids = _pool(store, pixels, 7)
    dead = store.claim_scoring("p", "unet", 1, 3, 30.0, "dead-replica")  # claimed, never scored
    scorer = FakeScorer(store, sleep=advance)  # each 1 s poll moves the store's clock 1 s
    messages = list(scorer.score("p", MODEL, SamplingPlan(4)))
    _check_progress(messages, 7)
    assert sorted(scorer.scored) == sorted(ids)
    assert scorer.scored[-3:] == dead  # scored last, once the claims ran out
    waiting = [m for m in messages if not m.finished and m.done == 4]
    assert 25 <= len(waiting) <= 32  # it polled about 30 times, one per simulated second


def test_waiting_for_others_stops_at_the_deadline(store: PoolStore, pixels: Pixels) -> None:
    ids = _pool(store, pixels, 4)
    store.claim_scoring("p", "unet", 1, 1, 30.0, "slow-replica")
    scorer = FakeScorer(store, sleep=lambda s: None)
    with pytest.raises(DeadlineExceeded, match="other scorers"):
        list(scorer.score("p", MODEL, SamplingPlan(4, deadline=time.monotonic() - 1)))
    assert sorted(scorer.scored) == sorted(ids[1:])  # its own share is stored before it gives up


def test_force_rescores_every_image_here(store: PoolStore, pixels: Pixels) -> None:
    ids = _pool(store, pixels, 5)
    first = FakeScorer(store)
    list(first.score("p", MODEL, SamplingPlan(4)))
    forced = FakeScorer(store)
    messages = list(forced.score("p", MODEL, SamplingPlan(4), force=True))
    _check_progress(messages, 5)
    assert sorted(forced.scored) == sorted(ids)


class OrderScorer(FakeScorer):
    """Logs when each batch is submitted, waited for, and stored, by its first image id."""

    def __init__(self, store: PoolStore) -> None:
        super().__init__(store)
        self.events: list[tuple[str, str]] = []
        put = store.put_scores

        def put_scores(pool: str, rows: Any) -> None:
            self.events.append(("store", rows[0].image_id))
            put(pool, rows)

        cast(Any, store).put_scores = put_scores

    def _score_batch(self, *args: Any, **kwargs: Any) -> Callable[[], tuple[list[ScoreRow], int]]:
        ids = args[2]
        self.events.append(("submit", ids[0]))
        scored = super()._score_batch(*args, **kwargs)

        def result() -> tuple[list[ScoreRow], int]:
            self.events.append(("wait", ids[0]))
            return scored()

        return result


@pytest.mark.parametrize("force", [False, True])
def test_the_next_batch_is_in_the_engine_before_the_last_one_is_stored(
    store: PoolStore, pixels: Pixels, force: bool
) -> None:
    _pool(store, pixels, 9)  # three batches of 3
    scorer = OrderScorer(store)
    messages = list(scorer.score("p", MODEL, SamplingPlan(4), force=force))
    _check_progress(messages, 9)
    firsts = [image_id for event, image_id in scorer.events if event == "submit"]
    assert len(firsts) == 3
    order = scorer.events.index
    for k in range(2):  # batch k+1 is read and submitted before batch k is waited for and stored
        assert order(("submit", firsts[k + 1])) < order(("wait", firsts[k])) < order(("store", firsts[k]))
    assert store.needs_scoring("p", "unet", 1) == []


def test_a_pass_closed_early_stores_the_batch_in_flight(store: PoolStore, pixels: Pixels) -> None:
    _pool(store, pixels, 12)
    scorer = OrderScorer(store)
    passes = scorer.score("p", MODEL, SamplingPlan(4))
    for _ in range(3):  # the start; the first batch submitted; it stored and the second in the engine
        next(passes)
    passes.close()
    submitted = [image_id for event, image_id in scorer.events if event == "submit"]
    assert len(submitted) == 2 and len(scorer.scored) == 6
    # nothing is left claimed and unscored: the six submitted are fresh, the other six free for the next pass
    assert sorted(store.needs_scoring("p", "unet", 1)) == sorted(
        {r.image_id for r in store.list_images("p")} - set(scorer.scored)
    )
    rest = list(
        FakeScorer(store, sleep=lambda s: pytest.fail("waited on a claim left behind")).score(
            "p", MODEL, SamplingPlan(4)
        )
    )
    assert rest[-1].finished and rest[-1].total == 6


@pytest.mark.parametrize("force", [False, True])
def test_an_empty_pool_finishes_at_once(store: PoolStore, force: bool) -> None:
    scorer = FakeScorer(store)
    (only,) = scorer.score("nothing-here", MODEL, SamplingPlan(4), force=force)
    assert (only.done, only.total, only.finished) == (0, 0, True) and scorer.scored == []


class SlowScorer(FakeScorer):
    """Batches that take a while, and a count of them, so a stop can land in the middle of a pass."""

    def __init__(self, store: PoolStore) -> None:
        super().__init__(store)
        self.batches = threading.Semaphore(0)

    def _score_batch(self, *args: Any, **kwargs: Any) -> Callable[[], tuple[list[ScoreRow], int]]:
        scored = super()._score_batch(*args, **kwargs)

        def result() -> tuple[list[ScoreRow], int]:
            time.sleep(0.02)
            self.batches.release()
            return scored()

        return result


def test_background_rescoring_stops_after_the_batch_in_hand(store: PoolStore, pixels: Pixels) -> None:
    ids = _pool(store, pixels, 30)
    scorer = SlowScorer(store)
    thread = threading.Thread(target=scorer.rescore_all, args=(MODEL, SamplingPlan(4)))
    thread.start()
    assert scorer.batches.acquire(timeout=10)  # the first batch is in
    scorer.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert 3 <= len(scorer.scored) < len(ids)  # stopped mid-pool, not after it
    # the claims were released: another pass takes the rest
    rest = list(FakeScorer(store).score("p", MODEL, SamplingPlan(4)))
    assert rest[-1].finished and rest[-1].total == len(ids) - len(scorer.scored)


def test_closing_the_servicer_waits_for_background_rescoring(store: PoolStore, pixels: Pixels) -> None:
    _pool(store, pixels, 30)
    servicer = _servicer(store, samples=4)
    scorer = servicer.scorer = SlowScorer(store)
    servicer._rescore_in_background(MODEL)
    assert scorer.batches.acquire(timeout=10)
    (thread,) = [t for t in threading.enumerate() if t.name == "ceal-rescore"]
    servicer.close()  # returns only once the rescoring thread has ended; then the store is closed
    assert not thread.is_alive()


class RuleScorer(FakeScorer):
    """Records the stopping rule of each batch; draws 5 samples an image under a rule, T without one."""

    def __init__(self, store: PoolStore) -> None:
        super().__init__(store)
        self.rules: list[AdaptiveRule | None] = []

    def _score_batch(
        self, pool: str, model: LoadedModel, ids: list[str], plan: SamplingPlan, rng: np.random.Generator
    ) -> Callable[[], tuple[list[ScoreRow], int]]:
        rows, drawn = super()._score_batch(pool, model, ids, plan, rng)()
        self.rules.append(plan.rule)
        return lambda: (rows, (5 * len(rows) if plan.rule is not None else drawn))


def test_background_rescoring_is_adaptive_when_configured_and_reports_its_mean_t(
    store: PoolStore, pixels: Pixels
) -> None:
    _pool(store, pixels, 7)
    servicer = _servicer(store, rescore_tolerance=2e-3, rescore_min_samples=4)
    scorer = servicer.scorer = RuleScorer(store)
    assert scorer.mean_samples("p", "unet", 1) == 0.0  # nothing scored yet
    servicer._rescore_in_background(MODEL)
    for thread in [t for t in threading.enumerate() if t.name == "ceal-rescore"]:
        thread.join(timeout=30)
    servicer.close()
    assert len(scorer.rules) == 3 and all(r is not None for r in scorer.rules)  # 7 images, 3 a batch
    assert {(r.tolerance, r.min_samples) for r in scorer.rules if r is not None} == {(2e-3, 4)}
    assert scorer.mean_samples("p", "unet", 1) == 5.0


def test_fixed_t_rescoring_and_explicit_passes_report_their_own_mean_t(store: PoolStore, pixels: Pixels) -> None:
    _pool(store, pixels, 4)
    scorer = RuleScorer(store)
    scorer.rescore_all(MODEL, SamplingPlan(12))  # no rule: fixed T
    assert scorer.rules == [None, None] and scorer.mean_samples("p", "unet", 1) == 12.0
    plan = SamplingPlan(20, scoring_rule(20, 1e-3, 4))
    forced = list(scorer.score("p", MODEL, plan, force=True))
    assert forced[-1].finished and forced[-1].mean_samples == 5.0 == scorer.mean_samples("p", "unet", 1)


def test_a_bad_background_rule_is_refused_when_the_servicer_starts(store: PoolStore) -> None:
    from ceal.service.errors import InvalidInput

    with pytest.raises(InvalidInput, match="adaptive"):
        _servicer(store, rescore_tolerance=1e-3, rescore_min_samples=2)


def test_a_bad_rescore_scale_is_refused_when_the_servicer_starts(store: PoolStore) -> None:
    from ceal.service.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"rescore_scale must be between 0.25 and 1"):
        _servicer(store, rescore_scale=0.0)
    assert _servicer(store, rescore_scale=0.5).scorer.resolution.scale == 0.5
    assert _servicer(store).scorer.resolution is None  # 1 = full resolution: no gate
