"""Per-class Dice and HD95 against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.spatial.distance import cdist

from ceal.trainer.metrics import hd95, per_class_scores


def _brute_hd95(a: np.ndarray, b: np.ndarray) -> float:
    """MONAI's HD95 written out: boundary pixels, all pairwise distances, both directions' 95th percentiles."""
    edge = lambda m: np.argwhere(m & ~ndimage.binary_erosion(m, np.ones((3, 3), bool)))  # noqa: E731
    d = cdist(edge(a), edge(b))
    return float(max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_hd95_is_the_brute_force_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.random((16, 16)) > 0.7, rng.random((16, 16)) > 0.7
    a[3, 3] = b[10, 12] = True
    assert hd95(a, b) == pytest.approx(_brute_hd95(a, b))
    assert hd95(a, a) == 0.0


def test_a_shifted_box_is_as_far_as_the_shift_and_spacing_scales_it() -> None:
    a = np.zeros((30, 30), bool)
    a[5:15, 5:15] = True
    b = np.roll(a, 4, axis=1)
    assert hd95(a, b) == pytest.approx(4.0)
    assert hd95(a, b, spacing=(0.5, 0.5)) == pytest.approx(2.0)
    assert np.isnan(hd95(a, np.zeros_like(a)))


def test_per_class_scores_count_images_per_class() -> None:
    target = np.zeros((3, 20, 20), np.uint8)
    target[0, 2:8, 2:8] = 1
    target[1, 10:16, 10:16] = 2
    pred = target.copy()
    pred[0, 2:8, 2:5] = 0  # class 1 half found on image 0
    pred[2, 0:3, 0:3] = 2  # class 2 where there is none: Dice 0, no HD95
    lesion, organ = per_class_scores(pred, target, ["background", "lesion", "organ"])
    assert (lesion.name, lesion.images, lesion.hd95_missing) == ("lesion", 1, 0)
    assert lesion.dice == pytest.approx(2 * 18 / (18 + 36))
    assert (organ.images, organ.hd95_missing, organ.dice, organ.hd95) == (2, 1, 0.5, 0.0)
