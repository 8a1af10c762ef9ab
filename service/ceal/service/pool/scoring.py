"""Score a pool with one model version: only what is missing or stale, with progress, split across every
scorer on the same store by claiming each batch first.

Images go through the engine's dynamic batcher a batch at a time, so pool scoring shares the engine with
interactive Predict calls instead of bypassing its queue. With an adaptive tolerance each image stops drawing
samples once the standard error of its mean mutual information (the score pools rank by) is small enough.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from ceal.service.engine.adaptive import AdaptiveRule
from ceal.service.engine.core import Engine, EngineLimits, adaptive_rule, check_adaptive
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.engine.scores import SCORING_OPTIONS, scored_image
from ceal.service.errors import DeadlineExceeded, Overloaded
from ceal.service.middleware.spans import child_span, record_run
from ceal.service.pool.resolution import CALIBRATION_SEED, ResolutionGate
from ceal.service.store.base import PackedMask, PoolStore, ScoreRow

log = logging.getLogger(__name__)

CLAIM_SECONDS = 10.0  # shortest scoring claim: how soon a dead replica's share is taken over
POLL_SECONDS = 0.5  # how often a scorer with nothing left to claim looks whether the others are done
COUNT_SECONDS = 1.0  # how often progress counts what other scorers stored
QUEUE_FULL_SECONDS = 0.05  # how long a pass waits for room when interactive calls fill the batcher's queue
# Background rescoring's adaptive tolerance by default (nats of mean mutual information): about half the spread
# of the pool's scores on the benchmark models (docs/performance.md), where the ranking kept ρ ≥ 0.95.
DEFAULT_RESCORE_TOLERANCE = 1e-3  # ServerConfig.rescore_tolerance's default


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    fresh: int
    images_per_second: float
    eta_seconds: float
    finished: bool
    mean_samples: float = 0.0  # Monte-Carlo samples per image this pass drew so far (adaptive T: below T_max)


Passes = Generator[Progress, None, None]


@dataclass(frozen=True)
class _Pending:
    """A batch submitted to the engine: its ids, when it was started, and the wait for its scores."""

    ids: list[str]
    began: float
    result: Callable[[], tuple[list[ScoreRow], int]]


def score_row(
    model: LoadedModel, image_id: str, samples: np.ndarray, descriptor: np.ndarray, size: tuple[int, ...]
) -> ScoreRow:
    """Image-level scores of one image from its MC samples (T, C, h, w), as the store keeps them, with the
    version's predicted mask at the model's resolution (packed bits) for the version ensemble."""
    scores, mask = scored_image(model, image_id, samples, descriptor, size)
    values = {f.name: getattr(scores, f.name) for f in fields(scores)}
    return ScoreRow(model_name=model.meta.name, model_version=model.meta.version, mask=PackedMask.of(mask), **values)


def scoring_rule(samples: int, adaptive_tolerance: float, adaptive_min_samples: int) -> AdaptiveRule | None:
    """The stopping rule pool scoring submits with (`samples` is T_max), or None for a fixed T.

    Raises InvalidInput for a negative or non-finite tolerance, or a floor outside DEFAULT_GROUPS..samples."""
    opts = replace(
        SCORING_OPTIONS,
        samples=samples,
        adaptive_tolerance=adaptive_tolerance,
        adaptive_min_samples=adaptive_min_samples,
    )
    check_adaptive(opts)
    return adaptive_rule(opts)


@dataclass(frozen=True)
class SamplingPlan:
    """How every image of a pass is sampled: `samples` MC passes (T_max under an adaptive `rule`), the seed
    the per-image generators are spawned from, and the call's deadline (`time.monotonic()` seconds).

    Built and checked once at the edge by `sampling_plan`; the scorer carries it through as it is."""

    samples: int
    rule: AdaptiveRule | None = None
    seed: int | None = None
    deadline: float | None = None


def sampling_plan(
    limits: EngineLimits,
    samples: int,
    *,
    adaptive_tolerance: float = 0.0,
    adaptive_min_samples: int = 0,
    seed: int | None = None,
    deadline: float | None = None,
) -> SamplingPlan:
    """The checked plan of a ScorePool call. Raises InvalidInput, saying what to change, for `samples` outside
    the engine's limits or bad adaptive options (see `scoring_rule`), before anything is scored."""
    limits.check_samples(samples)
    return SamplingPlan(samples, scoring_rule(samples, adaptive_tolerance, adaptive_min_samples), seed, deadline)


class PoolScorer:
    """Scores pools, sharing the work with every scorer on the same store (threads, processes, replicas).

    Each batch is claimed first (`PoolStore.claim_scoring`), scored, and its scores stored; so scorers that run
    at once on one pool, here or on other replicas sharing a Postgres store, score each image once per model
    version. A claim lasts `claim_seconds`, or three times the slowest batch seen when that is longer: when a
    replica dies, its claims expire within that time and the other scorers take them over. A claim that runs
    out while its batch is still being scored (a first batch slower than `claim_seconds`) can cost one
    duplicate scoring, never a missing one.
    """

    def __init__(
        self,
        store: PoolStore,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.monotonic,
        claim_seconds: float = CLAIM_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        resolution: ResolutionGate | None = None,
    ) -> None:
        """resolution: score at a reduced input size where its ranking holds (`pool/resolution.py`); None = full."""
        self.store = store
        self.resolution = resolution
        self.engine = engine
        self.clock = clock
        self.claim_seconds = claim_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._drawn: dict[tuple[str, str, int], tuple[int, int]] = {}  # (pool, model, version) → (samples, images)

    def mean_samples(self, pool: str, model: str, version: int) -> float:
        """Mean T per image of the last scoring pass of `pool` with this model version here (0.0: none)."""
        with self._guard:
            samples, images = self._drawn.get((pool, model, version), (0, 0))
        return samples / images if images else 0.0

    def _count(self, key: tuple[str, str, int], samples: int, images: int, *, fresh: bool = False) -> float:
        """Add a batch's samples to this pass's tally (`fresh`: a new pass starts); returns the pass's mean T."""
        with self._guard:
            before = (0, 0) if fresh else self._drawn.get(key, (0, 0))
            total = (before[0] + samples, before[1] + images)
            self._drawn[key] = total
        return total[0] / total[1] if total[1] else 0.0

    def stop(self) -> None:
        """Ask background rescoring to end after the batch in hand (the server is stopping)."""
        self._stopping.set()

    def _lock(self, pool: str, model: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((pool, model), threading.Lock())

    def score(self, pool: str, model: LoadedModel, plan: SamplingPlan, *, force: bool = False) -> Passes:
        """Score what the pool needs for the model's version; yield progress after each batch (and while waiting
        on other scorers); the last message has finished=True, once every image that needed scoring at the start
        has a fresh score, whoever scored it.

        total is the number that needed scoring when the call started; done counts those scored since, by this
        call or any other scorer. force=True rescores every image of the pool here, without claims: an explicit
        "redo" from one caller is not split across replicas (their unforced passes find the fresh scores and
        skip), and one forced pass per (pool, model) runs at a time in this process.

        `plan` is taken as checked (`sampling_plan`). A version's first pass with a resolution gate calibrates
        it first (seconds to a minute): a message with the total and nothing done comes before that."""
        if self.resolution is not None:  # the version's resolution, calibrated on this pool the first time
            if self.resolution.decision(*model.key) is None:
                yield from self._before_calibration(pool, model, force)
            ids = functools.partial(self.store.needs_scoring, pool, model.meta.name, model.meta.version, force=True)
            model = self.resolution.model_for(model, ids, functools.partial(self._calibration_scores, pool, plan))
        yield from (self._score_forced if force else self._score_shared)(pool, model, plan)

    def _before_calibration(self, pool: str, model: LoadedModel, force: bool) -> Passes:
        """The first message of a pass that calibrates before it scores: what it has to do, nothing done yet."""
        name, version = model.meta.name, model.meta.version
        total = len(self.store.needs_scoring(pool, name, version, force=force))
        if total:
            fresh = 0 if force else self.store.counts(pool, name, version).images - total
            yield Progress(0, total, fresh, 0.0, 0.0, False)

    def _score_forced(self, pool: str, model: LoadedModel, plan: SamplingPlan) -> Passes:
        with self._lock(pool, model.meta.name):
            yield from self._score_all(pool, model, plan)

    def _score_shared(self, pool: str, model: LoadedModel, plan: SamplingPlan) -> Passes:
        name, version = model.meta.name, model.meta.version
        todo = set(self.store.needs_scoring(pool, name, version))  # ours to see finished, not ours to score
        base = self.store.counts(pool, name, version)
        total, fresh = len(todo), base.images - len(todo)
        yield Progress(0, total, fresh, 0.0, 0.0, not todo)
        if not todo:
            return
        # Two claim names, one per batch in flight: a claim query passes over other workers' live claims only,
        # so the batch claimed while the last one is in the engine must claim under the other name.
        worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        workers, claims = (f"{worker}:a", f"{worker}:b"), 0
        rng = np.random.default_rng(plan.seed)
        batch = max(1, self.engine.batcher.max_images)
        started = counted_at = self.clock()
        slowest, done, others = 0.0, 0, 0
        key, mean = (pool, name, version), self._count((pool, name, version), 0, 0, fresh=True)
        pending: _Pending | None = None  # the batch in the engine while the next one is claimed and read
        try:
            while True:
                claim = max(self.claim_seconds, 3 * slowest)
                with child_span("store"):
                    ids = (
                        self.store.claim_scoring(pool, name, version, batch, claim, workers[claims % 2]) if todo else []
                    )
                claims += bool(ids)
                following = self._start(pool, model, ids, plan, rng) if ids else None
                finished, pending = pending, following
                if finished is not None:
                    drawn = self._finish(pool, finished)
                    mean = self._count(key, drawn, len(finished.ids))
                    slowest = max(slowest, self.clock() - finished.began)
                    todo.difference_update(finished.ids)
                if pending is None and todo:  # the rest is claimed by others: wait until they store it or expire
                    todo.intersection_update(self.store.needs_scoring(pool, name, version))
                    if todo:
                        if plan.deadline is not None and time.monotonic() > plan.deadline:
                            raise DeadlineExceeded("the deadline passed while other scorers finished the pool")
                        self.sleep(self.poll_seconds)
                if not todo and pending is None:
                    break
                if self.clock() - counted_at >= COUNT_SECONDS:  # others' progress, without a query per batch
                    others = self.store.counts(pool, name, version).scored_fresh - base.scored_fresh
                    counted_at = self.clock()
                done = min(total - 1, max(done, total - len(todo), others))
                rate = done / max(self.clock() - started, 1e-9)
                yield Progress(done, total, fresh, rate, (total - done) / rate if rate else 0.0, False, mean)
        finally:
            self._settle(pool, pending)
        rate = total / max(self.clock() - started, 1e-9)
        yield Progress(total, total, fresh, rate, 0.0, True, mean)

    def _score_all(self, pool: str, model: LoadedModel, plan: SamplingPlan) -> Passes:
        todo = self.store.needs_scoring(pool, model.meta.name, model.meta.version, force=True)
        started, done = self.clock(), 0
        rng = np.random.default_rng(plan.seed)
        batch = max(1, self.engine.batcher.max_images)
        yield Progress(0, len(todo), 0, 0.0, 0.0, not todo)
        key = (pool, model.meta.name, model.meta.version)
        if todo:
            self._count(key, 0, 0, fresh=True)
        batches = [todo[start : start + batch] for start in range(0, len(todo), batch)]
        pending: _Pending | None = None
        try:
            for ids in [*batches, None]:  # batch k + 1 goes to the engine before batch k is waited for
                finished, pending = pending, self._start(pool, model, ids, plan, rng) if ids else None
                if finished is None:
                    continue
                drawn = self._finish(pool, finished)
                done += len(finished.ids)
                mean = self._count(key, drawn, len(finished.ids))
                rate = done / max(self.clock() - started, 1e-9)
                yield Progress(done, len(todo), 0, rate, (len(todo) - done) / rate, done == len(todo), mean)
        finally:
            self._settle(pool, pending)

    def _start(
        self, pool: str, model: LoadedModel, ids: list[str], plan: SamplingPlan, rng: np.random.Generator
    ) -> _Pending:
        """Read and submit a batch; the engine runs it while the caller stores the one before and claims the next
        (the store's round trips then overlap the engine's work instead of stalling it)."""
        return _Pending(ids, self.clock(), self._score_batch(pool, model, ids, plan, rng))

    def _finish(self, pool: str, batch: _Pending) -> int:
        """Wait for a started batch's scores and store them; returns the samples it drew."""
        rows, drawn = batch.result()
        with child_span("store"):
            self.store.put_scores(pool, rows)
        return drawn

    def _settle(self, pool: str, batch: _Pending | None) -> None:
        """A pass that ends early (stopped, closed, failed) still stores the batch already in the engine, so its
        claims end scored rather than waiting to expire; a batch that fails is left to expire and be retried."""
        if batch is None:
            return
        try:
            self._finish(pool, batch)
        except Exception:
            log.warning("a batch of pool %s in flight when its pass ended was not stored; it is rescored later", pool)

    def _score_batch(
        self, pool: str, model: LoadedModel, ids: list[str], plan: SamplingPlan, rng: np.random.Generator
    ) -> Callable[[], tuple[list[ScoreRow], int]]:
        """Submit `ids` to the engine, `plan.samples` MC samples each (T_max under an adaptive `plan.rule`);
        returns the wait for their scores and the samples drawn."""
        pixels = [self.store.load_pixels(pool, i) for i in ids]
        futures = []
        for image in pixels:
            x = prepare(image, model.meta)[None]
            while True:
                try:
                    image_rng = rng.spawn(1)[0]
                    futures.append(
                        self.engine.batcher.submit(model, x, plan.samples, image_rng, plan.deadline, adaptive=plan.rule)
                    )
                    break
                except Overloaded as exc:  # interactive calls come first: wait for room instead of failing
                    if exc.reason != "queue":  # the pass cannot finish before its deadline: say so now
                        raise
                    self.sleep(QUEUE_FULL_SECONDS)

        def result() -> tuple[list[ScoreRow], int]:
            rows, drawn = [], 0
            for image_id, image, future in zip(ids, pixels, futures, strict=True):
                out = future.result()
                record_run(out.timing)
                drawn += int(out.probabilities.shape[1])
                with child_span("scoring"):
                    rows.append(score_row(model, image_id, out.probabilities[0], out.descriptors[0], image.shape[:2]))
            return rows, drawn

        return result

    def _calibration_scores(self, pool: str, plan: SamplingPlan, model: LoadedModel, ids: Sequence[str]) -> list[float]:
        """Mean-MI scores of `ids` through `model` as a pass computes them (seeded, not stored): what the
        resolution gate compares between sizes."""
        rng, batch = np.random.default_rng(CALIBRATION_SEED), max(1, self.engine.batcher.max_images)
        scores: list[float] = []
        for start in range(0, len(ids), batch):
            rows, _ = self._score_batch(pool, model, list(ids[start : start + batch]), plan, rng)()
            scores.extend(row.mutual_information for row in rows)
        return scores

    def rescore_all(self, model: LoadedModel, plan: SamplingPlan) -> None:
        """Background rescoring of every pool after a new model version (stale scores → fresh), `plan.samples`
        per image or, under an adaptive `plan.rule`, at most that (the server's default is adaptive: see
        `ServerConfig.rescore_tolerance`); the mean T each pool took is logged and kept (`mean_samples`).

        Ends early, after the batch in hand, once `stop()` is called; what it did not score stays stale and
        the next ScorePool (or the next server's rescoring) scores it."""
        for pool in self.store.pools():
            if self._stopping.is_set():
                return
            try:
                last = None
                passes = self.score(pool, model, plan)
                try:
                    for progress in passes:
                        last = progress
                        if self._stopping.is_set():
                            log.info("background rescoring of pool %s stopped: the server is stopping", pool)
                            return
                finally:
                    passes.close()  # releases the pass's claims now, not at garbage collection
                if last is not None:
                    log.info(
                        "pool %s rescored with %s v%d: %d images, mean T %.1f (T max %d, adaptive tolerance %g)",
                        pool,
                        model.meta.name,
                        model.meta.version,
                        last.total,
                        last.mean_samples,
                        plan.samples,
                        plan.rule.tolerance if plan.rule else 0.0,
                    )
            except Exception:  # a failed background pass is retried by the next ScorePool
                log.exception("background rescoring of pool %s failed", pool)
