"""The engine: pixels in, Monte-Carlo prediction out (mean, label map, uncertainty maps, image scores)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ceal.service import image_reductions, postprocess
from ceal.service.engine.adaptive import DEFAULT_GROUPS, DEFAULT_MIN_SAMPLES, AdaptiveRule
from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.loaded import LoadedModel, Samples
from ceal.service.engine.preprocess import crop_to_content, prepare, resize_planes
from ceal.service.errors import InvalidInput
from ceal.service.middleware.spans import child_span, record_run
from ceal.service.uncertainty import MCStatistics, summarize

MAPS = ("probability", "label_map", "entropy", "mutual_information", "variance")
DEFAULT_MAPS = ("probability", "label_map", "entropy")


@dataclass(frozen=True)
class PredictOptions:
    samples: int  # T, the MC passes (T_max under adaptive T); the server's default is ServerConfig.default_samples
    maps: tuple[str, ...] = DEFAULT_MAPS
    threshold: float = 0.5
    return_samples: bool = False
    seed: int | None = None
    keep_largest_component: bool = False
    fill_holes: bool = False
    score_measure: str = "mutual_information"
    score_reduction: str = "mean"
    top_k_percent: float = 5.0
    # > 0: `samples` becomes T_max; sampling stops once the score's standard error is at most this (score units)
    adaptive_tolerance: float = 0.0
    # adaptive T only: no stopping before this many samples; 0 = DEFAULT_MIN_SAMPLES
    adaptive_min_samples: int = 0
    float16_maps: bool = False  # probability and uncertainty maps sent as float16 (the response is smaller)


@dataclass
class Prediction:
    """Results at the input image's size (H, W); `samples_raw` at the model's size."""

    model_name: str
    model_version: int
    samples: int
    probability: np.ndarray  # (H, W) foreground for sigmoid models, (C, H, W) for softmax
    label_map: np.ndarray  # uint8 (H, W)
    maps: dict[str, np.ndarray]  # per-pixel uncertainty maps, float32 (H, W)
    score: float
    scores: dict[tuple[str, str], float]
    foreground_fraction: float
    confidence: float
    descriptor: np.ndarray  # (D,) encoder bottleneck features
    samples_raw: np.ndarray | None = None
    stats: MCStatistics | None = field(default=None, repr=False)


@dataclass(frozen=True)
class EngineLimits:
    min_samples: int = 1
    max_samples: int = 100

    def check_samples(self, samples: int) -> None:
        """Raises InvalidInput unless min_samples <= samples <= max_samples."""
        if not self.min_samples <= samples <= self.max_samples:
            raise InvalidInput(f"samples must be between {self.min_samples} and {self.max_samples}, got {samples}")


class Engine:
    """Runs predictions for loaded models through the dynamic batcher."""

    def __init__(self, batcher: DynamicBatcher | None = None, limits: EngineLimits | None = None) -> None:
        self.batcher = batcher or DynamicBatcher()
        self.limits = limits or EngineLimits()

    def check_options(self, opts: PredictOptions) -> None:
        self.limits.check_samples(opts.samples)
        if not 0.0 < opts.threshold < 1.0:
            raise InvalidInput(f"threshold must be in (0, 1), got {opts.threshold}")
        if not 0.0 < opts.top_k_percent <= 100.0:
            raise InvalidInput(f"top_k_percent must be in (0, 100], got {opts.top_k_percent}")
        unknown = [m for m in opts.maps if m not in MAPS]
        if unknown:
            raise InvalidInput(f"unknown maps {unknown}; choose from {list(MAPS)}")
        if opts.score_measure not in image_reductions.MEASURES:
            raise InvalidInput(f"score measure must be one of {list(image_reductions.MEASURES)}")
        if opts.score_reduction not in image_reductions.REDUCTIONS:
            raise InvalidInput(f"score reduction must be one of {list(image_reductions.REDUCTIONS)}")
        check_adaptive(opts)

    def predict(
        self,
        model: LoadedModel,
        pixels: np.ndarray,
        opts: PredictOptions,
        *,
        deadline: float | None = None,
        on_queued: Callable[[Future[Samples]], object] | None = None,
    ) -> Prediction:
        """`on_queued(future)` lets the caller cancel the queued work (a cancelled call's job is skipped)."""
        self.check_options(opts)
        x = prepare(pixels, model.meta)[None]
        rng = np.random.default_rng(opts.seed)
        future = self.batcher.submit(model, x, opts.samples, rng, deadline, adaptive=adaptive_rule(opts))
        if on_queued is not None:
            on_queued(future)
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0) + 5.0
        sampled = future.result(timeout=timeout)
        record_run(sampled.timing)
        with child_span("scoring"):
            return finish(model, pixels.shape[:2], sampled.probabilities[0], sampled.descriptors[0], opts)


def adaptive_rule(opts: PredictOptions) -> AdaptiveRule | None:
    """The stopping rule for `opts` (on the headline score), or None for a fixed T."""
    if opts.adaptive_tolerance <= 0.0:
        return None
    return AdaptiveRule(
        opts.adaptive_tolerance,
        opts.score_measure,
        opts.score_reduction,
        opts.threshold,
        opts.top_k_percent,
        min_samples=opts.adaptive_min_samples or DEFAULT_MIN_SAMPLES,
    )


def check_adaptive(opts: PredictOptions) -> None:
    """The adaptive-T options: tolerance >= 0 (0 = fixed T); min_samples 0 (the default floor), or
    DEFAULT_GROUPS <= m <= samples with a tolerance set. Raises InvalidInput saying what to change."""
    if not (math.isfinite(opts.adaptive_tolerance) and opts.adaptive_tolerance >= 0.0):
        raise InvalidInput(
            "adaptive_tolerance must be >= 0 (0 = fixed T; e.g. 0.001 for mean mutual information), "
            f"got {opts.adaptive_tolerance}"
        )
    floor = opts.adaptive_min_samples
    if floor == 0:
        return
    if opts.adaptive_tolerance <= 0.0:
        raise InvalidInput(
            f"adaptive_min_samples ({floor}) only applies to adaptive T: set adaptive_tolerance > 0 "
            "or leave adaptive_min_samples at 0"
        )
    if not DEFAULT_GROUPS <= floor <= opts.samples:
        raise InvalidInput(
            f"adaptive_min_samples must be between {DEFAULT_GROUPS} (the jackknife groups) and samples "
            f"({opts.samples}), or 0 for the default {DEFAULT_MIN_SAMPLES}; got {floor}"
        )


def finish(
    model: LoadedModel, size: tuple[int, ...], samples: np.ndarray, descriptor: np.ndarray, opts: PredictOptions
) -> Prediction:
    """Samples (T, C, h, w) → statistics, maps at the original size, label map and scores. A padded input
    ("pad" models) is cropped to the image first, so the padding never counts in a score."""
    height, width = int(size[0]), int(size[1])
    raw = samples
    samples = np.ascontiguousarray(crop_to_content(samples, height, width, model.meta.resize))
    stats = summarize(samples)
    scores = image_reductions.image_scores(stats, threshold=opts.threshold, top_k_percent=opts.top_k_percent)
    mean = resize_planes(stats.mean, height, width)  # (C, H, W)
    if mean.shape[0] == 1:
        probability = mean[0]
        label_map = (probability > opts.threshold).astype(np.uint8)
    else:
        probability = mean
        label_map = mean.argmax(axis=0).astype(np.uint8)
    if opts.fill_holes:
        label_map = postprocess.fill_holes(label_map)
    if opts.keep_largest_component:
        label_map = postprocess.keep_largest_component(label_map)
    maps = {
        name: resize_planes(stats.measure(name)[None], height, width)[0]
        for name in image_reductions.MEASURES
        if name in opts.maps
    }
    return Prediction(
        model_name=model.meta.name,
        model_version=model.meta.version,
        samples=stats.samples,
        probability=probability,
        label_map=label_map,
        maps=maps,
        score=scores[(opts.score_measure, opts.score_reduction)],
        scores=scores,
        foreground_fraction=float((label_map != 0).mean()),
        confidence=image_reductions.confidence(stats),
        descriptor=descriptor,
        samples_raw=raw.astype(np.float16) if opts.return_samples else None,  # at the model's size, padding too
        stats=stats,
    )
