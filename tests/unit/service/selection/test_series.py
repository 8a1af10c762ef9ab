from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.selection import SERIES_MEASURES, ScoreTable, aggregate_series, rank_series, series_measure

MakeTable = Callable[..., ScoreTable]

# Series "a": five slices, two very uncertain; "b": two fairly uncertain and one unscored; "c": one unscored.
KEYS = ["a", "a", "b", "a", "a", "b", "a", "c", "b"]
MI = [0.01, 0.50, 0.30, 0.40, 0.02, 0.25, 0.03, np.nan, np.nan]


def test_a_series_scores_the_sum_of_its_top_k_slices(make_table: MakeTable) -> None:
    table = make_table([0.1] * 9, mutual_information=MI, series_keys=KEYS)
    keys, scores, members = aggregate_series(table, top_k=2)
    assert keys == ("a", "b", "c")
    np.testing.assert_allclose(scores, [0.90, 0.55, np.nan])
    assert members == ((1, 3, 6, 4, 0), (2, 5, 8), (7,))
    _, scores_3, _ = aggregate_series(table, top_k=3)
    assert scores_3[0] == pytest.approx(0.93) and scores_3[1] == pytest.approx(0.55)  # the NaN adds nothing


def test_excluded_slices_neither_count_nor_appear(make_table: MakeTable) -> None:
    table = make_table([0.1] * 9, mutual_information=MI, series_keys=KEYS)
    keys, scores, members = aggregate_series(table, top_k=2, exclude={1, 7})
    assert keys == ("a", "b")
    assert scores[0] == pytest.approx(0.43)
    assert members[0] == (3, 6, 4, 0)


def test_without_series_keys_each_image_is_its_own_series(make_table: MakeTable) -> None:
    table = make_table([0.3, 0.1], mutual_information=[0.2, 0.4])
    keys, scores, members = aggregate_series(table)
    assert keys == ("img0", "img1") and members == ((0,), (1,))
    np.testing.assert_allclose(scores, [0.2, 0.4])
    _, entropy_scores, _ = aggregate_series(table, measure="entropy")
    np.testing.assert_allclose(entropy_scores, [0.3, 0.1])


def test_rank_series_orders_series_and_sums_their_time(make_table: MakeTable) -> None:
    table = make_table([0.1] * 9, mutual_information=MI, series_keys=KEYS, boundary_length=[0] * 9, components=[1] * 9)
    ranked = rank_series(table, 5, top_k=1)
    assert ranked.series_keys == ("a", "b", "c")  # top-1: 0.50, 0.30, unscored last
    assert ranked.scores[:2] == pytest.approx((0.50, 0.30))
    assert ranked.members[1] == (2, 5, 8)
    assert ranked.estimated_seconds == pytest.approx((5 * 30.0, 3 * 30.0, 30.0))
    assert ranked.reasons[0] == (
        "mutual information summed over its 1 most uncertain of 5 slices: 0.5, "
        "ranked 1 of 3 series in the pool (top 34%)"
    )
    assert "missing" in ranked.reasons[2]
    assert rank_series(table, 1).series_keys == ("a",)
    assert len(rank_series(make_table([]), 3)) == 0


def test_top_k_must_be_positive(make_table: MakeTable) -> None:
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        aggregate_series(make_table([0.1]), top_k=0)


def test_the_series_measure_follows_the_strategy(make_table: MakeTable) -> None:
    # By MI series "a" leads; by entropy "b"; by the version disagreement "c" (its one slice disagrees most).
    entropy = [0.1, 0.1, 0.9, 0.1, 0.1, 0.8, 0.1, 0.2, 0.1]
    disagreement = [0.0, 0.1, 0.2, 0.0, 0.0, 0.0, 0.0, 0.9, np.nan]
    table = make_table(entropy, mutual_information=MI, series_keys=KEYS, version_disagreement=disagreement)
    lead = {}
    for strategy in ("bald", "entropy", "ensemble", "random", "typiclust"):
        measure, note = series_measure(strategy, table)
        ranked = rank_series(table, 3, top_k=2, measure=measure, note=note)
        lead[strategy] = ranked.series_keys[0]
        if strategy in SERIES_MEASURES:
            assert note == "" and "chooses single images" not in ranked.reasons[0]
        else:
            assert f"({strategy} chooses single images, so series rank by mutual information)" in ranked.reasons[0]
    assert lead == {"bald": "a", "entropy": "b", "ensemble": "c", "random": "a", "typiclust": "a"}
    assert (
        "disagreement between the last model versions' masks summed"
        in rank_series(table, 1, measure="version_disagreement").reasons[0]
    )
    no_history = make_table(entropy, mutual_information=MI, series_keys=KEYS)
    assert series_measure("ensemble", no_history) == (
        "mutual_information",
        "no earlier versions scored this pool yet, so by mutual information",
    )
