"""The learning-curve stop signal."""

from __future__ import annotations

import numpy as np

from ceal.trainer.worker.curve import power_law, replicates, stop_signal


def test_fit_recovers_a_known_curve_and_predicts_the_next_gain() -> None:
    n = np.array([20.0, 40, 60, 80, 100, 120])
    y = power_law(n, 0.85, 2.0, 0.7)
    out = replicates(n, y, np.array([120.0, 140.0]))
    assert out is not None
    best, _, plateau = out
    truth = float(power_law(np.array([140.0]), 0.85, 2.0, 0.7)[0] - y[-1])
    assert abs((best[1] - best[0]) - truth) < 1e-3
    assert abs(plateau - 0.85) < 0.01


def test_plateau_is_said_when_the_upper_bound_is_under_the_threshold() -> None:
    n = [100, 200, 300, 400, 500]
    flat = list(power_law(np.array(n, dtype=float), 0.8, 5.0, 1.5))
    signal = stop_signal(n, flat, [0.002] * 5, seconds_per_label=36.0, threshold=0.005)
    assert signal is not None and signal.plateau and signal.gain_next_20_high < 0.005
    assert signal.labels_per_hour == 100.0 and signal.gain_per_hour >= signal.gain_next_20 >= 0


def test_a_rising_curve_is_no_plateau_and_fewer_than_three_points_give_none() -> None:
    n = [20, 40, 60, 80]
    rising = list(power_law(np.array(n, dtype=float), 0.9, 1.5, 0.5))
    signal = stop_signal(n, rising, [0.02] * 4, seconds_per_label=0.0, threshold=0.005)
    assert signal is not None and not signal.plateau and signal.gain_next_20_low > 0
    assert np.isnan(signal.gain_per_hour)  # no recorded seconds: no per-hour figure
    assert stop_signal(n[:2], rising[:2], [0.0, 0.0], seconds_per_label=30.0, threshold=0.005) is None
