"""The stop signal: a learning curve fitted to held-out Dice against the number of human labels.

Model: an inverse power law, Dice(n) = a - b * n^(-c) (a <= 1 the plateau, b, c > 0), the usual shape of
learning curves (Figueroa et al. 2012, "Predicting sample size required for classification performance").
Uncertainty by a bootstrap: each replicate adds to the fitted curve resampled residuals and, per point,
normal noise with that point's own standard error (from its held-out interval), then refits. The expected
gain of the next `k` labels is Dice(n + k) - Dice(n) at the newest point n, with a 90 % interval; per
annotator-hour, k is the labels an annotator draws in an hour at the recorded mean seconds per label.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeWarning, curve_fit

FloatArray = npt.NDArray[np.float64]
MIN_POINTS = 3


def power_law(n: FloatArray, a: float, b: float, c: float) -> FloatArray:
    out: FloatArray = a - b * np.power(n, -c)
    return out


def _fit(n: FloatArray, y: FloatArray) -> tuple[float, float, float] | None:
    guess = (min(1.0, float(y.max()) + 0.05), max(1e-3, float(y.max() - y.min()) * float(n.min()) ** 0.5), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(power_law, n, y, p0=guess, bounds=([0.0, 0.0, 0.05], [1.0, 1e4, 3.0]), maxfev=2000)
    except (RuntimeError, ValueError):
        return None
    return float(params[0]), float(params[1]), float(params[2])


@dataclass(frozen=True)
class StopSignal:
    points: int
    labels: int  # human labels at the newest point
    gain_next_20: float
    gain_next_20_low: float
    gain_next_20_high: float
    gain_per_hour: float
    gain_per_hour_low: float
    gain_per_hour_high: float
    labels_per_hour: float
    plateau_dice: float
    threshold: float
    plateau: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def replicates(
    labels: FloatArray,
    dice: FloatArray,
    at: FloatArray,
    se: FloatArray | None = None,
    *,
    resamples: int = 200,
    seed: int = 0,
) -> tuple[FloatArray, FloatArray, float] | None:
    """The fitted curve at `at` (M,), bootstrap replicates of it (R, M) and the plateau `a`; None if no fit.

    labels, dice: (P,) points; se: (P,) standard errors of the points (None or 0 if unknown)."""
    if len(labels) < MIN_POINTS:
        return None
    fit = _fit(labels, dice)
    if fit is None:
        return None
    fitted = power_law(labels, *fit)
    residuals = dice - fitted
    noise = np.zeros_like(dice) if se is None else np.nan_to_num(se)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        y = fitted + rng.choice(residuals, size=len(residuals)) + rng.normal(0.0, 1.0, len(noise)) * noise
        p = _fit(labels, np.clip(y, 0.0, 1.0))
        if p is not None:
            draws.append(power_law(at, *p))
    if not draws:
        return None
    return power_law(at, *fit), np.stack(draws), fit[0]


def _gain(labels: FloatArray, dice: FloatArray, se: FloatArray, k: float, seed: int) -> tuple[float, ...]:
    """(gain, 5 % quantile, 95 % quantile, plateau a) of the next `k` labels after the newest point."""
    if not math.isfinite(k) or k <= 0:
        return (float("nan"),) * 4
    n = float(labels.max())
    out = replicates(labels, dice, np.array([n, n + k]), se, seed=seed)
    if out is None:
        return (float("nan"),) * 4
    best, draws, plateau = out
    gains = draws[:, 1] - draws[:, 0]
    return float(best[1] - best[0]), float(np.quantile(gains, 0.05)), float(np.quantile(gains, 0.95)), plateau


def stop_signal(
    labels: list[int],
    dice: list[float],
    dice_se: list[float],
    *,
    seconds_per_label: float,
    threshold: float,
    seed: int = 0,
) -> StopSignal | None:
    """The stop signal from curve points (human labels, held-out Dice, its standard error); None under 3 points.

    `plateau` is True when the upper bound of the next 20 labels' gain is under `threshold` (Dice points)."""
    if len(labels) < MIN_POINTS:
        return None
    n, y, se = (np.asarray(v, dtype=np.float64) for v in (labels, dice, dice_se))
    g20 = _gain(n, y, se, 20.0, seed)
    per_hour = 3600.0 / seconds_per_label if seconds_per_label > 0 else float("nan")
    gh = _gain(n, y, se, per_hour, seed)
    return StopSignal(
        points=len(labels),
        labels=int(n.max()),
        gain_next_20=g20[0],
        gain_next_20_low=g20[1],
        gain_next_20_high=g20[2],
        gain_per_hour=gh[0],
        gain_per_hour_low=gh[1],
        gain_per_hour_high=gh[2],
        labels_per_hour=per_hour,
        plateau_dice=g20[3],
        threshold=threshold,
        plateau=bool(math.isfinite(g20[2]) and g20[2] < threshold),
    )
