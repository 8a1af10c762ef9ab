"""Adaptive T: draw Monte-Carlo samples chunk by chunk and stop once the image score is precise enough.

A fixed T spends as many suffix passes on an image the model is sure about as on a hard one. Here the
suffix runs `chunk` samples at a time; after each chunk (once `min_samples` are in) the delete-a-group
jackknife standard error of the requested image score (`MCAccumulator.score_standard_error`) is compared
with `tolerance`, and sampling stops when it is at or below it, or at T_max (the request's `samples`).

The tolerance is absolute, in the score's own units (nats for entropy and mutual information), because what
a ranking needs is that the scores of different images be told apart: an image whose score is near zero
(a confident image) stops early, an uncertain one keeps sampling. The masks come from the caller's
generator in draw order, so the same seed gives the same samples and the same stopping point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ceal.service.errors import InvalidInput
from ceal.service.image_reductions import MEASURES, REDUCTIONS
from ceal.service.uncertainty import MCAccumulator

__all__ = [
    "DEFAULT_GROUPS",
    "DEFAULT_MIN_SAMPLES",
    "AdaptiveResult",
    "AdaptiveRule",
    "SuffixRunner",
    "run_samples",
    "sample_adaptive",
]

DEFAULT_GROUPS = 4  # jackknife groups; also the fewest samples a stopping check can use
DEFAULT_MIN_SAMPLES = 8  # the server's floor when a request leaves adaptive_min_samples at 0


class SuffixRunner(Protocol):
    """What adaptive sampling needs of a loaded model (`LoadedModel.run_suffix`)."""

    def run_suffix(
        self,
        features: dict[str, np.ndarray],
        samples: int,
        rng: np.random.Generator,
        *,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        abandoned: Callable[[], bool] | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class AdaptiveRule:
    """When to stop: the standard error of image score (measure, reduction) at or below `tolerance`.

    chunk: samples per suffix run; groups: jackknife groups (sample t goes to group t mod groups);
    min_samples: no stopping before this many samples (a jackknife over a handful of samples is itself noisy).
    threshold, top_k_percent: as in the score definition (`image_reductions.image_scores`).
    """

    tolerance: float
    measure: str = "mutual_information"
    reduction: str = "mean"
    threshold: float = 0.5
    top_k_percent: float = 5.0
    chunk: int = 4
    groups: int = DEFAULT_GROUPS
    min_samples: int = DEFAULT_MIN_SAMPLES

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance) and self.tolerance > 0):
            raise InvalidInput(f"adaptive tolerance must be a positive number (score units); got {self.tolerance}")
        if self.measure not in MEASURES or self.reduction not in REDUCTIONS:
            raise InvalidInput(f"adaptive score must be one of {list(MEASURES)} × {list(REDUCTIONS)}")
        if self.chunk < 1 or self.groups < 2 or self.min_samples < self.groups:
            raise InvalidInput("adaptive sampling needs chunk >= 1, groups >= 2 and min_samples >= groups")

    def standard_error(self, accumulator: MCAccumulator) -> float:
        """The jackknife standard error of the rule's score over the samples in `accumulator` (made with
        `groups` groups), or inf before `min_samples`: sampling stops once this is at most `tolerance`."""
        if accumulator.samples < self.min_samples:
            return math.inf
        return accumulator.score_standard_error(
            self.measure, self.reduction, threshold=self.threshold, top_k_percent=self.top_k_percent
        )


@dataclass(frozen=True)
class AdaptiveResult:
    """probabilities: (T, C, h, w) the samples drawn; standard_error: of the score when sampling stopped
    (inf when T_max came before `min_samples`)."""

    probabilities: np.ndarray
    standard_error: float

    @property
    def samples(self) -> int:
        return int(self.probabilities.shape[0])


def sample_adaptive(
    model: SuffixRunner,
    features: dict[str, np.ndarray],
    max_samples: int,
    rng: np.random.Generator,
    rule: AdaptiveRule,
    *,
    deadline: float | None = None,
    abandoned: Callable[[], bool] | None = None,
) -> AdaptiveResult:
    """Suffix samples of one image (`features`: prefix outputs with batch 1) until `rule` is met or T_max."""
    images = {int(v.shape[0]) for v in features.values()}
    if images != {1}:
        raise InvalidInput(f"adaptive sampling takes the prefix outputs of one image; got batch sizes {images}")
    if max_samples < 1:
        raise InvalidInput(f"max_samples must be at least 1; got {max_samples}")
    accumulator = MCAccumulator(groups=rule.groups)
    chunks: list[np.ndarray] = []
    error = math.inf
    while accumulator.samples < max_samples:
        size = min(rule.chunk, max_samples - accumulator.samples)
        chunk = model.run_suffix(features, size, rng, deadline=deadline, abandoned=abandoned)[0]  # (size, C, h, w)
        chunks.append(chunk)
        accumulator.add(chunk)
        error = rule.standard_error(accumulator)
        if error <= rule.tolerance:
            break
    return AdaptiveResult(np.concatenate(chunks), error)


def run_samples(
    model: SuffixRunner,
    features: dict[str, np.ndarray],
    samples: int,
    rng: np.random.Generator,
    rule: AdaptiveRule | None,
    *,
    deadline: float | None = None,
    abandoned: Callable[[], bool] | None = None,
) -> np.ndarray:
    """The batcher's suffix step for one image → (1, T, C, h, w): fixed T without a rule, adaptive with one.

    `abandoned()` true (the caller left) stops the work at the next chunk with CancelledError."""
    if rule is None:
        return model.run_suffix(features, samples, rng, deadline=deadline, abandoned=abandoned)
    result = sample_adaptive(model, features, samples, rng, rule, deadline=deadline, abandoned=abandoned)
    return result.probabilities[None]
