"""Held-out split and promotion gate: pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceal.trainer.worker.gate import GateSettings, bootstrap_interval, judge, per_image_dice
from ceal.trainer.worker.heldout import hash_unit, is_heldout


def test_split_is_a_stable_share_of_ids() -> None:
    ids = [f"{i:032x}" for i in range(4000)]
    chosen = [i for i in ids if is_heldout(i)]
    assert 0.13 < len(chosen) / len(ids) < 0.17
    # adding ids never moves an earlier one: the choice is a function of the id alone
    assert [i for i in ids[:1000] if is_heldout(i)] == [i for i in chosen if i in set(ids[:1000])]
    assert hash_unit("abc") == hash_unit("abc") != hash_unit("abd")


@given(st.text(min_size=1, max_size=40), st.floats(0.0, 0.99), st.floats(0.0, 0.99))
def test_a_larger_share_keeps_every_smaller_shares_images(image_id: str, a: float, b: float) -> None:
    small, large = sorted((a, b))
    assert not is_heldout(image_id, small) or is_heldout(image_id, large)


def test_share_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        is_heldout("x", 1.0)


def test_per_image_dice_counts_two_empty_masks_as_one() -> None:
    pred = np.zeros((3, 4, 4), np.uint8)
    target = np.zeros((3, 4, 4), np.uint8)
    pred[1, :2] = 1
    target[1, :1] = 1
    pred[2, :2] = 1
    np.testing.assert_allclose(per_image_dice(pred, target), [1.0, 2 * 4 / 12, 0.0])


def test_clearly_worse_candidate_is_rejected_with_its_figures() -> None:
    rng = np.random.default_rng(0)
    served = rng.uniform(0.7, 0.9, 20)
    result = judge(served - 0.2 + rng.normal(0, 0.02, 20), served)
    assert not result.promote and result.difference_high < 0
    assert "worse beyond the noise" in result.reason and "20 held-out images" in result.reason


def test_noise_around_equal_promotes_and_a_small_loss_under_the_margin_too() -> None:
    rng = np.random.default_rng(1)
    served = rng.uniform(0.6, 0.9, 30)
    assert judge(served + rng.normal(0, 0.03, 30), served).promote
    assert judge(served - 0.005, served, GateSettings(margin=0.01)).difference_high < 0  # significant, yet ...
    assert not judge(served - 0.005, served, GateSettings(margin=0.01)).promote  # ... worse beyond the noise


def test_a_mean_loss_over_the_margin_is_rejected_even_when_noisy() -> None:
    served = np.array([0.9, 0.1, 0.9, 0.1, 0.9])
    candidate = np.array([0.1, 0.9, 0.1, 0.9, 0.5])  # mean -0.08, interval spans 0
    result = judge(candidate, served, GateSettings(margin=0.01))
    assert result.difference_low < 0 < result.difference_high
    assert not result.promote and "margin" in result.reason


def test_too_few_heldout_images_cannot_promote() -> None:
    result = judge(np.array([0.9, 0.9]), np.array([0.1, 0.1]))
    assert not result.promote and "only 2 held-out images" in result.reason


def test_bootstrap_interval_brackets_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(2).normal(0.5, 0.1, 50)
    low, high = bootstrap_interval(values, GateSettings())
    assert low < values.mean() < high
    assert (low, high) == bootstrap_interval(values, GateSettings())
