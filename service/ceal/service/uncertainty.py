"""Monte-Carlo dropout uncertainty: per-pixel maps and image scores (pure numpy, no I/O).

Conventions. The engine yields ``samples: (T, C, H, W)``: T stochastic passes of class probabilities.
``C == 1`` is a sigmoid model (the channel is the foreground probability p; the classes are {1 - p, p});
``C >= 2`` is a softmax over C classes. K is the number of classes: 2 when C == 1, else C.
Entropies are in nats, so every entropy lies in [0, log K].

- predictive entropy  H(p̄) = -Σ_k p̄_k log p̄_k, with p̄ the mean over the T samples (0·log 0 = 0);
- expected entropy    E_t[H(p_t)];
- mutual information  H(p̄) - E_t[H(p_t)] (BALD: the part of the uncertainty due to the model weights);
- variance            the population variance over T (ddof = 0) of p for C == 1; for C >= 2 the mean over
  classes of the per-class variance (which is also var(p) for C == 1 read as two classes {1 - p, p}).

Inputs must be finite probabilities in [0, 1] (1e-4 of rounding is tolerated and clipped); softmax channels
must sum to 1 within 1e-2 and are renormalised, which catches logits and multi-label sigmoids.
Bad input raises ``InvalidInput`` (a ValueError) whose message names the problem.
Image scores reduce each map with :mod:`ceal.service.image_reductions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from ceal.service.errors import InvalidInput
from ceal.service.image_reductions import (
    MEASURES,
    REDUCTIONS,
    boundary_weights,
    confidence,
    image_score,
    image_scores,
    mean_label_map,
    reduce_map,
)

__all__ = [
    "MEASURES",
    "REDUCTIONS",
    "MCAccumulator",
    "MCStatistics",
    "boundary_weights",
    "class_probabilities",
    "confidence",
    "expected_entropy",
    "image_score",
    "image_scores",
    "mean_label_map",
    "mutual_information",
    "predictive_entropy",
    "reduce_map",
    "sample_variance",
    "summarize",
]

_RANGE_TOLERANCE: Final = 1e-4
_SUM_TOLERANCE: Final = 1e-2

Array = npt.NDArray[np.float64]


def _check_probabilities(values: npt.ArrayLike, name: str, ndim: int, layout: str) -> Array:
    """Validate probabilities whose class axis is ``-3``; return them as float64, clipped and renormalised."""
    array = np.asarray(values)
    if array.ndim != ndim or 0 in array.shape:
        raise InvalidInput(f"{name} must be a non-empty array of shape {layout}; got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidInput(f"{name} must hold real probabilities; got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise InvalidInput(f"{name} hold {bad} non-finite values (NaN or inf); check the model output")
    low, high = float(array.min()), float(array.max())
    if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
        raise InvalidInput(
            f"{name} hold values in [{low:.4g}, {high:.4g}], outside [0, 1]; "
            "pass sigmoid or softmax probabilities, not logits"
        )
    array = np.clip(array, 0.0, 1.0)
    if array.shape[-3] >= 2:
        totals = array.sum(axis=-3, keepdims=True)
        worst = float(np.max(np.abs(totals - 1.0)))
        if worst > _SUM_TOLERANCE:
            raise InvalidInput(
                f"{name} with {array.shape[-3]} channels must sum to 1 over the channel axis (off by up to "
                f"{worst:.3g}); pass softmax outputs, or one sigmoid channel for a binary model"
            )
        array = np.asarray(array / totals, dtype=np.float64)
    return array


def _check_samples(samples: npt.ArrayLike) -> Array:
    return _check_probabilities(samples, "samples", 4, "(T, C, H, W)")


def _two_class(probs: Array) -> Array:
    """(..., C, H, W) -> (..., K, H, W): a single sigmoid channel p becomes the classes {1 - p, p}."""
    if probs.shape[-3] == 1:
        return np.concatenate([1.0 - probs, probs], axis=-3)
    return probs


def _entropy(probs: Array) -> Array:
    """(..., K, H, W) class probabilities -> (..., H, W) entropy in nats, with 0·log 0 = 0 (xlogy)."""
    logs = np.log(np.where(probs > 0.0, probs, 1.0))
    return np.asarray(-np.sum(probs * logs, axis=-3), dtype=np.float64)


def class_probabilities(samples: npt.ArrayLike) -> Array:
    """``samples: (T, C, H, W)`` -> ``(T, K, H, W)`` float64; a sigmoid channel p becomes {1 - p, p}."""
    return _two_class(_check_samples(samples))


def predictive_entropy(mean_probs: npt.ArrayLike) -> Array:
    """H(p̄) of ``mean_probs: (K, H, W)`` -> ``(H, W)`` float64 nats; one channel is read as sigmoid p."""
    return _entropy(_two_class(_check_probabilities(mean_probs, "mean_probs", 3, "(K, H, W)")))


def expected_entropy(samples: npt.ArrayLike) -> Array:
    """E_t[H(p_t)] of ``samples: (T, C, H, W)`` -> ``(H, W)`` float64 nats."""
    return np.asarray(_entropy(class_probabilities(samples)).mean(axis=0), dtype=np.float64)


def mutual_information(samples: npt.ArrayLike) -> Array:
    """BALD H(p̄) - E_t[H(p_t)] of ``samples: (T, C, H, W)`` -> ``(H, W)`` float64 nats, clipped at 0."""
    probs = class_probabilities(samples)  # (T, K, H, W)
    information = _entropy(probs.mean(axis=0)) - _entropy(probs).mean(axis=0)
    return np.asarray(np.maximum(information, 0.0), dtype=np.float64)


def sample_variance(samples: npt.ArrayLike) -> Array:
    """Variance over T (ddof = 0) of ``samples: (T, C, H, W)`` -> ``(H, W)``: of p for C == 1, else the
    mean over classes of the per-class variance."""
    return np.asarray(_check_samples(samples).var(axis=0).mean(axis=0), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class MCStatistics:
    """What T Monte-Carlo passes say about one image.

    ``mean: (C, H, W)`` mean probabilities (same C convention as the samples); ``entropy`` (predictive),
    ``mutual_information`` and ``variance``: ``(H, W)`` float32 maps; ``samples``: T.
    """

    mean: npt.NDArray[np.float32]
    entropy: npt.NDArray[np.float32]
    mutual_information: npt.NDArray[np.float32]
    variance: npt.NDArray[np.float32]
    samples: int

    @property
    def num_classes(self) -> int:
        """K: 2 for a sigmoid (C == 1) model, else C."""
        return max(2, int(self.mean.shape[0]))

    def measure(self, name: str) -> npt.NDArray[np.float32]:
        """The ``(H, W)`` map called ``name``, one of :data:`MEASURES`."""
        if name not in MEASURES:
            raise InvalidInput(f"unknown measure {name!r}; choose one of {', '.join(MEASURES)}")
        maps = {
            "entropy": self.entropy,
            "mutual_information": self.mutual_information,
            "variance": self.variance,
        }
        return maps[name]


def _statistics(sum_p: Array, sum_sq: Array, sum_entropy: Array, count: int) -> MCStatistics:
    """Statistics of ``count`` samples from their sums Σp, Σp² ``(C, H, W)`` and Σ_t H(p_t) ``(H, W)``."""
    mean = sum_p / count  # (C, H, W)
    entropy = _entropy(_two_class(mean))  # (H, W)
    information = np.maximum(entropy - sum_entropy / count, 0.0)
    # var(1 - p) == var(p), so averaging over the C channels also gives var(p) for C == 1.
    variance = np.maximum(sum_sq / count - mean**2, 0.0).mean(axis=0)
    return MCStatistics(
        mean=mean.astype(np.float32),
        entropy=entropy.astype(np.float32),
        mutual_information=information.astype(np.float32),
        variance=variance.astype(np.float32),
        samples=count,
    )


class MCAccumulator:
    """Streaming :func:`summarize`: add chunks of samples, keep only running sums (memory constant in T).

    ``groups >= 2`` keeps the sums per group (sample t goes to group t mod groups) so that
    :meth:`score_standard_error` can give a delete-a-group jackknife standard error of an image score,
    e.g. to stop drawing samples once the ranking score is precise enough; memory grows with ``groups``.
    """

    def __init__(self, *, groups: int = 1) -> None:
        if groups < 1:
            raise InvalidInput(f"groups must be at least 1; got {groups}")
        self._groups = groups
        self._counts = np.zeros(groups, dtype=np.int64)
        self._sum_p: Array | None = None  # (G, C, H, W)
        self._sum_sq: Array | None = None  # (G, C, H, W)
        self._sum_entropy: Array | None = None  # (G, H, W)

    @property
    def samples(self) -> int:
        """The number of samples added so far."""
        return int(self._counts.sum())

    def add(self, chunk: npt.ArrayLike) -> None:
        """Add ``chunk: (t, C, H, W)`` samples; C, H and W must match the earlier chunks."""
        probs = _check_samples(chunk)
        if self._sum_p is None or self._sum_sq is None or self._sum_entropy is None:
            self._sum_p = np.zeros((self._groups, *probs.shape[1:]))
            self._sum_sq = np.zeros_like(self._sum_p)
            self._sum_entropy = np.zeros((self._groups, *probs.shape[2:]))
        elif probs.shape[1:] != self._sum_p.shape[1:]:
            raise InvalidInput(
                f"chunk has (C, H, W) = {probs.shape[1:]} but earlier chunks had {self._sum_p.shape[1:]}; "
                "use one accumulator per image"
            )
        entropies = _entropy(_two_class(probs))  # (t, H, W)
        group_of = (self.samples + np.arange(probs.shape[0])) % self._groups  # (t,)
        for group in np.unique(group_of):
            rows = group_of == group
            self._sum_p[group] += probs[rows].sum(axis=0)
            self._sum_sq[group] += (probs[rows] ** 2).sum(axis=0)
            self._sum_entropy[group] += entropies[rows].sum(axis=0)
            self._counts[group] += int(rows.sum())

    def result(self) -> MCStatistics:
        """The statistics of every sample added so far."""
        if self._sum_p is None or self._sum_sq is None or self._sum_entropy is None:
            raise InvalidInput("no samples were added; call add() with at least one (t, C, H, W) chunk first")
        return _statistics(
            self._sum_p.sum(axis=0), self._sum_sq.sum(axis=0), self._sum_entropy.sum(axis=0), self.samples
        )

    def score_standard_error(
        self,
        measure: str,
        reduction: str = "mean",
        *,
        threshold: float = 0.5,
        top_k_percent: float = 5.0,
        boundary_sigma: float = 5.0,
    ) -> float:
        """Jackknife standard error of the image score ``(measure, reduction)`` (see :func:`image_scores`).

        Needs ``groups >= 2`` at construction and at least ``groups`` samples. The score is recomputed
        with each group left out (θ_g); the error is ``sqrt((G - 1) / G · Σ_g (θ_g - mean θ)²)``.
        """
        if self._groups < 2:
            raise InvalidInput("score_standard_error needs MCAccumulator(groups=G) with G >= 2 (e.g. 8)")
        if self._sum_p is None or self._sum_sq is None or self._sum_entropy is None or self._counts.min() == 0:
            raise InvalidInput(f"score_standard_error needs at least {self._groups} samples; got {self.samples}")
        options = {"threshold": threshold, "top_k_percent": top_k_percent, "boundary_sigma": boundary_sigma}
        left_out = []
        for group in range(self._groups):
            stats = _statistics(
                self._sum_p.sum(axis=0) - self._sum_p[group],
                self._sum_sq.sum(axis=0) - self._sum_sq[group],
                self._sum_entropy.sum(axis=0) - self._sum_entropy[group],
                self.samples - int(self._counts[group]),
            )
            left_out.append(image_score(stats, measure, reduction, **options))
        spread = np.asarray(left_out) - np.mean(left_out)
        return float(math.sqrt((self._groups - 1) / self._groups * float(np.sum(spread**2))))


def summarize(samples: npt.ArrayLike) -> MCStatistics:
    """:class:`MCStatistics` of ``samples: (T, C, H, W)`` (the same sums as :class:`MCAccumulator`)."""
    accumulator = MCAccumulator()
    accumulator.add(samples)
    return accumulator.result()
