"""Scoring a pool at a reduced resolution, offered per model version only where its ranking holds.

With `ServerConfig.rescore_scale` < 1 (`ceal serve --rescore-scale`), the first pool scored with a model version
first scores a calibration sample of its images (CALIBRATION_IMAGES, seeded) at full and at reduced size
(`engine/reduced.py`). If Spearman's ρ of their mutual-information scores (the score pools rank by) is at
least FIDELITY_RHO, every pass of that version scores at the reduced size; otherwise at full size. Either way
the decision is logged (ρ, sizes, sample size; never an image id) and kept for the version, so one version's
scores in a pool all come from one resolution. A model that cannot run at the reduced size (a graph with fixed
spatial shapes) is scored at full size, and the log says why.

What is not kept: decisions live in this process (a restarted server calibrates again, on the same seeded
sample, so it decides alike for the same pool); a pool with fewer than MIN_CALIBRATION_IMAGES images is scored
at full size without deciding, and the version decides on the next, larger pool.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.reduced import reduced_model
from ceal.service.errors import InvalidInput
from ceal.service.metadata import MODEL_FILE

__all__ = [
    "CALIBRATION_IMAGES",
    "CALIBRATION_SEED",
    "FIDELITY_RHO",
    "MIN_CALIBRATION_IMAGES",
    "Decision",
    "ResolutionGate",
    "check_scale",
]

log = logging.getLogger(__name__)

FIDELITY_RHO = 0.95  # Spearman ρ of mean-MI scores, reduced vs full size, the reduced size must reach
CALIBRATION_IMAGES = 32  # images scored at both sizes to decide
MIN_CALIBRATION_IMAGES = 8  # fewer: ρ says too little; the pass scores at full size and nothing is decided
CALIBRATION_SEED = 0  # which images, and their dropout masks: the same decision on every replica and restart
MIN_SCALE = 0.25  # below this a 192×240 model would rank on 48×64 images: refused as a setting
REMEMBERED = 16  # decisions kept (one reduced model each); the oldest is dropped first

# The mean-MI scores of pool images (by id) through a model, as pool scoring computes and stores them.
ScoreImages = Callable[[LoadedModel, Sequence[str]], Sequence[float]]
BuildReduced = Callable[[LoadedModel, float], LoadedModel]


def check_scale(scale: float) -> None:
    """Raises InvalidInput, saying what to change, unless MIN_SCALE <= scale <= 1 (1 = full resolution)."""
    if not (math.isfinite(scale) and MIN_SCALE <= scale <= 1.0):
        raise InvalidInput(
            f"rescore_scale must be between {MIN_SCALE} and 1 (1 = score pools at full resolution; e.g. 0.5 or "
            f"0.67 to score at half or two thirds of the model's input size where the ranking holds), got {scale}"
        )


def build_reduced(model: LoadedModel, scale: float) -> LoadedModel:
    """`model` at `scale` × its input size, from the model file of the folder it was loaded from."""
    if model.source is None:
        raise InvalidInput(f"{model.meta.name} v{model.meta.version} was not loaded from a models folder")
    return reduced_model(model, (model.source / MODEL_FILE).read_bytes(), scale)


@dataclass(frozen=True)
class Decision:
    """The resolution a model version's pool scores are computed at, and why."""

    model: LoadedModel  # what pool scoring runs: the reduced model, or the full one
    reduced: bool
    rho: float  # Spearman ρ of mean MI, reduced vs full, on the calibration sample; NaN when not measured
    images: int  # calibration images
    reason: str


class ResolutionGate:
    """Decides, once per model version, whether pools are scored at `scale` × the input size."""

    def __init__(
        self,
        scale: float,
        *,
        build: BuildReduced = build_reduced,
        calibration_images: int = CALIBRATION_IMAGES,
        min_images: int = MIN_CALIBRATION_IMAGES,
        seed: int = CALIBRATION_SEED,
    ) -> None:
        check_scale(scale)
        self.scale = scale
        self.build = build
        self.calibration_images = calibration_images
        self.min_images = min_images
        self.seed = seed
        self._decisions: dict[tuple[str, int], Decision] = {}
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def decision(self, name: str, version: int) -> Decision | None:
        """The decision taken for this version here, if any."""
        with self._guard:
            return self._decisions.get((name, version))

    def model_for(self, model: LoadedModel, image_ids: Callable[[], Sequence[str]], score: ScoreImages) -> LoadedModel:
        """The model a pass should score with: the version's decision, taken now on a seeded sample of
        `image_ids()` (scored with `score` at both sizes) when there is none yet. Concurrent passes of one
        version wait for the one that calibrates."""
        with self._guard:
            lock = self._locks.setdefault(model.key, threading.Lock())
        with lock:
            known = self.decision(*model.key)
            if known is None:
                known = self._decide(model, sorted(image_ids()), score)
                if known is None:
                    return model
                with self._guard:
                    self._decisions[model.key] = known
                    while len(self._decisions) > REMEMBERED:
                        del self._decisions[next(iter(self._decisions))]
        return known.model

    def _decide(self, model: LoadedModel, ids: list[str], score: ScoreImages) -> Decision | None:
        name, version = model.key
        if len(ids) < self.min_images:
            log.info(
                "%s v%d: pool of %d images, fewer than the %d that calibrating the reduced resolution needs: "
                "this pass scores at full resolution, the version decides on a larger pool",
                name,
                version,
                len(ids),
                self.min_images,
            )
            return None
        try:
            reduced = self.build(model, self.scale)
        except InvalidInput as exc:
            log.warning("%s v%d: pools are scored at full resolution: %s", name, version, exc)
            return Decision(model, False, math.nan, 0, str(exc))
        rng = np.random.default_rng(self.seed)
        sample = [ids[i] for i in sorted(rng.choice(len(ids), min(self.calibration_images, len(ids)), replace=False))]
        full = np.asarray(score(model, sample), dtype=np.float64)
        small = np.asarray(score(reduced, sample), dtype=np.float64)
        rho = float(spearmanr(full, small).statistic) if np.ptp(full) > 0 and np.ptp(small) > 0 else math.nan
        sizes = (
            f"{reduced.meta.input_height}×{reduced.meta.input_width} for {model.meta.input_height}×"
            f"{model.meta.input_width} (scale {self.scale:g})"
        )
        if rho >= FIDELITY_RHO:
            reason = f"Spearman ρ of mean MI {rho:.3f} >= {FIDELITY_RHO} on {len(sample)} images"
            log.info("%s v%d: pools are scored at %s: %s", name, version, sizes, reason)
            return Decision(reduced, True, rho, len(sample), reason)
        reason = f"Spearman ρ of mean MI {rho:.3f} < {FIDELITY_RHO} on {len(sample)} images"
        if math.isnan(rho):
            reason = f"Spearman ρ undefined: the mean-MI scores of {len(sample)} images do not vary at one size"
        log.warning("%s v%d: pools are scored at full resolution, not %s: %s", name, version, sizes, reason)
        return Decision(model, False, rho, len(sample), reason)
