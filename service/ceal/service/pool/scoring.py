"""Score a pool with one model version: only what is missing or stale, with progress.

Images go through the engine's dynamic batcher a batch at a time, so pool scoring shares the engine with
interactive Predict calls instead of bypassing its queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ceal.service import postprocess
from ceal.service.engine.core import Engine, PredictOptions, finish
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.errors import Overloaded
from ceal.service.store.base import PoolStore, ScoreRow

log = logging.getLogger(__name__)

SCORING_OPTIONS = PredictOptions(maps=())


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    fresh: int
    images_per_second: float
    eta_seconds: float
    finished: bool


def score_row(model: LoadedModel, image_id: str, samples: np.ndarray, descriptor: np.ndarray,
              size: tuple[int, ...]) -> ScoreRow:
    """Image-level scores of one image from its MC samples (T, C, h, w)."""
    p = finish(model, size, samples, descriptor, SCORING_OPTIONS)
    mask = p.label_map != 0
    return ScoreRow(
        image_id=image_id,
        model_name=model.meta.name,
        model_version=model.meta.version,
        entropy=p.scores[("entropy", "mean")],
        mutual_information=p.scores[("mutual_information", "mean")],
        variance=p.scores[("variance", "mean")],
        confidence=p.confidence,
        boundary_length=float(postprocess.boundary_length(mask)),
        components=int(postprocess.component_count(mask)),
        foreground_fraction=p.foreground_fraction,
        descriptor=descriptor.astype(np.float32),
    )


class PoolScorer:
    """Scores pools; one scoring pass per (pool, model) at a time, so concurrent callers don't double the work."""

    def __init__(self, store: PoolStore, engine: Engine, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, pool: str, model: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((pool, model), threading.Lock())

    def score(
        self, pool: str, model: LoadedModel, samples: int, *, force: bool = False, deadline: float | None = None,
        seed: int | None = None,
    ) -> Iterator[Progress]:
        """Yield progress after each batch; the last message has finished=True."""
        with self._lock(pool, model.meta.name):
            todo = self.store.needs_scoring(pool, model.meta.name, model.meta.version, force=force)
            fresh = len(self.store.list_images(pool)) - len(todo)
            started, done = self.clock(), 0
            rng = np.random.default_rng(seed)
            batch = max(1, self.engine.batcher.max_images)
            yield Progress(0, len(todo), fresh, 0.0, 0.0, not todo)
            for start in range(0, len(todo), batch):
                ids = todo[start : start + batch]
                rows = self._score_batch(pool, model, ids, samples, rng, deadline)
                self.store.put_scores(pool, rows)
                done += len(ids)
                elapsed = max(self.clock() - started, 1e-9)
                rate = done / elapsed
                yield Progress(done, len(todo), fresh, rate, (len(todo) - done) / rate, done == len(todo))

    def _score_batch(
        self, pool: str, model: LoadedModel, ids: list[str], samples: int, rng: np.random.Generator,
        deadline: float | None,
    ) -> list[ScoreRow]:
        pixels = [self.store.load_pixels(pool, i) for i in ids]
        futures = []
        for image in pixels:
            x = prepare(image, model.meta)[None]
            while True:
                try:
                    futures.append(self.engine.batcher.submit(model, x, samples, rng.spawn(1)[0], deadline))
                    break
                except Overloaded:  # interactive calls come first: wait for room instead of failing the pass
                    time.sleep(0.05)
        rows = []
        for image_id, image, future in zip(ids, pixels, futures, strict=True):
            out = future.result()
            rows.append(score_row(model, image_id, out.probabilities[0], out.descriptors[0], image.shape[:2]))
        return rows

    def rescore_all(self, model: LoadedModel, samples: int) -> None:
        """Background rescoring of every pool after a new model version (stale scores → fresh)."""
        for pool in self.store.pools():
            try:
                last = None
                for last in self.score(pool, model, samples):
                    pass
                if last is not None:
                    log.info("pool %s rescored with %s v%d: %d images", pool, model.meta.name, model.meta.version,
                             last.total)
            except Exception:  # noqa: BLE001 - a failed background pass is retried by the next ScorePool
                log.exception("background rescoring of pool %s failed", pool)
