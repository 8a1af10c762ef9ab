"""The batcher's suffix step for every request of a batch together: their Monte-Carlo rows in one engine run.

The prefix already runs once for all the images of a batch; this runs their suffix rows together as well, in
rounds. Each round takes, per request still sampling, its next chunk (an adaptive request: `rule.chunk`
samples, then its stopping check; a fixed-T request: its share of `max_rows`), and sends all of them through
`run_suffix_rows` in one call. Every request draws its masks from its own generator, sample by sample, so it
gets exactly the samples it would get alone (`run_samples`): same seed, same samples, same stopping point.
Between rounds each request's deadline and cancellation are checked; a request that fails leaves the others
running.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ceal.service.engine.adaptive import AdaptiveRule
from ceal.service.errors import DeadlineExceeded
from ceal.service.uncertainty import MCAccumulator

__all__ = ["RowsRunner", "SuffixJob", "run_merged"]


class RowsRunner(Protocol):
    """What merged sampling needs of a loaded model (`LoadedModel.run_suffix_rows`)."""

    max_rows: int

    def run_suffix_rows(
        self, features: dict[str, np.ndarray], counts: Sequence[int], rngs: Sequence[np.random.Generator]
    ) -> list[np.ndarray]: ...


@dataclass
class SuffixJob:
    """One image's sampling: `samples` (T, or T_max under `rule`), its generator, its deadline (on the runner's
    clock) and cancellation. After `run_merged`: `result` (1, T, C, h, w) or `error`."""

    samples: int
    rng: np.random.Generator
    rule: AdaptiveRule | None = None
    deadline: float | None = None
    abandoned: Callable[[], bool] | None = None
    chunks: list[np.ndarray] = field(default_factory=list)
    drawn: int = 0
    result: np.ndarray | None = None
    error: BaseException | None = None
    accumulator: MCAccumulator | None = None

    def _step(self, share: int) -> int:
        left = self.samples - self.drawn
        return min(left, self.rule.chunk) if self.rule is not None else min(left, share)

    def _check(self, now: float) -> None:
        if self.deadline is not None and now > self.deadline:
            raise DeadlineExceeded(f"deadline passed after {self.drawn} of {self.samples} Monte-Carlo samples")
        if self.abandoned is not None and self.abandoned():
            raise CancelledError(f"the call was cancelled after {self.drawn} of {self.samples} Monte-Carlo samples")

    def _add(self, chunk: np.ndarray) -> bool:
        """Take a chunk (k, C, h, w); True when this job is done."""
        self.chunks.append(chunk)
        self.drawn += int(chunk.shape[0])
        if self.rule is not None:  # the stopping check `adaptive.sample_adaptive` makes, chunk by chunk
            if self.accumulator is None:
                self.accumulator = MCAccumulator(groups=self.rule.groups)
            self.accumulator.add(chunk)
            if self.rule.standard_error(self.accumulator) <= self.rule.tolerance:
                return True
        return self.drawn >= self.samples


def run_merged(
    model: RowsRunner,
    features: dict[str, np.ndarray],
    jobs: Sequence[SuffixJob],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Sample every job (job i is image i of `features`); sets each job's `result` or `error`. Returns the number
    of samples drawn in all."""
    active = list(range(len(jobs)))
    total = 0
    while active:
        now, running = clock(), []
        for i in active:
            try:
                jobs[i]._check(now)
                running.append(i)
            except (DeadlineExceeded, CancelledError) as exc:
                jobs[i].error = exc
        if not running:
            break
        share = max(1, math.ceil(model.max_rows / len(running)))
        counts = [jobs[i]._step(share) if i in running else 0 for i in range(len(jobs))]  # 0: not in this round
        chunks = model.run_suffix_rows(features, counts, [job.rng for job in jobs])
        total += sum(counts)
        active = [i for i in running if not jobs[i]._add(chunks[i])]
    for job in jobs:
        if job.error is None:
            job.result = np.concatenate(job.chunks)[None]
    return total
