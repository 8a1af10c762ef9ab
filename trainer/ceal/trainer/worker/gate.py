"""The promotion gate: a paired comparison of candidate and served version on the same held-out images.

Per held-out image i, d_i = Dice(candidate_i) - Dice(served_i). The mean of d and its 95 % percentile
bootstrap interval (images resampled with replacement, seeded) decide:

- reject when the interval lies wholly below 0 (the candidate is worse beyond the noise), or when the mean
  difference is below -margin (worse by more than the tolerated margin, even if the noise hides it);
- reject when there are fewer than `min_images` held-out images (nothing can be judged);
- otherwise promote.

Pure numpy; figures are returned for the record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GateSettings:
    margin: float = 0.01  # Dice points the candidate may lose on average
    confidence: float = 0.95
    resamples: int = 2000
    min_images: int = 3
    seed: int = 0


@dataclass(frozen=True)
class GateResult:
    promote: bool
    reason: str
    images: int
    candidate_dice: float
    served_dice: float
    mean_difference: float
    difference_low: float
    difference_high: float
    candidate_low: float
    candidate_high: float

    def figures(self) -> dict[str, object]:
        return asdict(self)


def per_image_dice(pred: npt.NDArray[np.uint8], target: npt.NDArray[np.uint8]) -> FloatArray:
    """Dice of each (N, H, W) pair of binary masks; an image where both are empty counts as 1."""
    p, t = pred.astype(bool), target.astype(bool)
    inter = (p & t).sum(axis=(1, 2))
    total = p.sum(axis=(1, 2)) + t.sum(axis=(1, 2))
    out: FloatArray = np.where(total == 0, 1.0, 2.0 * inter / np.maximum(total, 1)).astype(np.float64)
    return out


def bootstrap_interval(values: FloatArray, settings: GateSettings) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (N,)."""
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(settings.seed)
    idx = rng.integers(0, len(values), size=(settings.resamples, len(values)))
    means = values[idx].mean(axis=1)
    alpha = (1.0 - settings.confidence) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def judge(candidate: FloatArray, served: FloatArray, settings: GateSettings = GateSettings()) -> GateResult:
    """Promote or reject from per-image Dice (N,) of the candidate and the served version on the same images."""
    if candidate.shape != served.shape:
        raise ValueError(f"paired Dice arrays differ in shape: {candidate.shape} vs {served.shape}")
    n = len(candidate)
    nan = float("nan")
    if n < settings.min_images:
        return GateResult(False, f"only {n} held-out images (need {settings.min_images})", n, *(nan,) * 7)
    diff = candidate - served
    low, high = bootstrap_interval(diff, settings)
    c_low, c_high = bootstrap_interval(candidate, settings)
    mean = float(diff.mean())
    pct = round(settings.confidence * 100)
    figures = (
        f"Dice {candidate.mean():.3f} vs {served.mean():.3f}, difference {mean:+.3f} [{low:+.3f}, {high:+.3f}] "
        f"({pct} % CI, {n} held-out images)"
    )
    if high < 0:
        promote, reason = False, f"rejected: worse beyond the noise: {figures}"
    elif mean < -settings.margin:
        promote, reason = False, f"rejected: mean loss over the {settings.margin:.3f} margin: {figures}"
    else:
        promote, reason = True, f"promoted: not worse beyond the noise: {figures}"
    return GateResult(promote, reason, n, float(candidate.mean()), float(served.mean()), mean, low, high, c_low, c_high)
