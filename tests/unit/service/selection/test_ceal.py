from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.selection import ScoreTable, ceal_selection, ceal_threshold

MakeTable = Callable[..., ScoreTable]

# Entropies: rows 0 and 1 are uncertain, rows 2..5 sure to different degrees, row 6 unscored.
ENTROPY = [0.40, 0.30, 0.001, 0.004, 0.0001, 0.02, np.nan]
CONFIDENCE = [0.40, 0.55, 0.998, 0.994, 0.9999, 0.97, np.nan]


def test_the_uncertain_go_to_the_human_and_the_sure_become_pseudo_labels(make_table: MakeTable) -> None:
    table = make_table(ENTROPY, confidence=CONFIDENCE)
    selection = ceal_selection(table, 2, round_index=0, delta_0=0.005, decay=0.001)
    assert selection.query == (0, 1)
    assert selection.scores == (0.40, 0.30)
    assert selection.pseudo == (4, 2, 3)  # entropy < 0.005, most confident first; 5 and 6 fail
    assert selection.pseudo_scores == (0.9999, 0.998, 0.994)
    assert "below the round-0 threshold 0.005" in selection.pseudo_reasons[0]
    assert "not queried and not already labelled" in selection.pseudo_reasons[0]
    assert "radiologist" in selection.reasons[0]
    assert selection.strategy == "ceal"


def test_the_threshold_tightens_with_rounds_and_stops_at_zero() -> None:
    assert ceal_threshold(0, delta_0=0.005, decay=0.001) == 0.005
    assert ceal_threshold(2, delta_0=0.005, decay=0.001) == pytest.approx(0.003)
    assert ceal_threshold(50, delta_0=0.005, decay=0.001) == 0.0
    thresholds = [ceal_threshold(r) for r in range(30)]
    assert thresholds == sorted(thresholds, reverse=True) and thresholds[0] > thresholds[-1]


def test_later_rounds_pseudo_label_fewer(make_table: MakeTable) -> None:
    table = make_table(ENTROPY, confidence=CONFIDENCE)
    by_round = [set(ceal_selection(table, 2, round_index=r, delta_0=0.005, decay=0.001).pseudo) for r in range(7)]
    assert by_round[0] == {2, 3, 4}
    assert by_round[2] == {2, 4}  # threshold 0.003 drops row 3 (entropy 0.004)
    assert by_round[5] == set()  # threshold 0: nothing is below it
    assert all(later <= earlier for earlier, later in itertools.pairwise(by_round))


def test_pseudo_labels_skip_the_queried_and_the_excluded(make_table: MakeTable) -> None:
    # Every image is sure: with k = 2 the two least sure are queried, not pseudo-labelled as well.
    table = make_table([0.001, 0.002, 0.0005, 0.003], confidence=[0.99, 0.98, 0.995, 0.97])
    selection = ceal_selection(table, 2, exclude={2})
    assert selection.query == (3, 1)
    assert selection.pseudo == (0,)


def test_max_pseudo_caps_the_most_confident_first(make_table: MakeTable) -> None:
    table = make_table(ENTROPY, confidence=CONFIDENCE)
    assert ceal_selection(table, 2, max_pseudo=1).pseudo == (4,)
    assert ceal_selection(table, 2, max_pseudo=0).pseudo == ()
    with pytest.raises(ValueError, match="max_pseudo must be >= 0"):
        ceal_selection(table, 2, max_pseudo=-1)


def test_an_empty_predicted_mask_is_never_a_pseudo_label(make_table: MakeTable) -> None:
    # Row 4 is the most confident, but its mask has no lesion (0 components); NaN components fail too.
    table = make_table(ENTROPY, confidence=CONFIDENCE, components=[1, 1, 1, np.nan, 0, 1, 1])
    assert ceal_selection(table, 2, delta_0=0.005, decay=0.001).pseudo == (2,)


def test_no_pseudo_labels_during_the_warm_up(make_table: MakeTable) -> None:
    table = make_table(ENTROPY, confidence=CONFIDENCE)
    for r in range(3):
        selection = ceal_selection(table, 2, round_index=r, delta_0=0.005, decay=0.0, warmup_rounds=2)
        assert selection.pseudo == (() if r < 2 else (4, 2, 3))
        assert selection.query == (0, 1)  # the human's share does not change
    with pytest.raises(ValueError, match="warmup_rounds must be >= 0"):
        ceal_selection(table, 2, warmup_rounds=-1)


def test_pseudo_labels_are_capped_by_the_human_labels_in_hand(make_table: MakeTable) -> None:
    # Rows 5 and 6 excluded (labelled): at most per_label × 2 pseudo-labels, most confident first.
    table = make_table([0.4, 0.3, 0.001, 0.004, 0.0001, 0.4, 0.4], confidence=[*CONFIDENCE[:5], 0.5, 0.5])
    capped = [ceal_selection(table, 2, exclude={5, 6}, pseudo_per_label=ratio).pseudo for ratio in (0, 0.5, 1, 9)]
    assert capped == [(), (4,), (4, 2), (4, 2, 3)]
    assert ceal_selection(table, 2, exclude={5, 6}, pseudo_per_label=9, max_pseudo=1).pseudo == (4,)
    with pytest.raises(ValueError, match="pseudo_per_label must be a finite number >= 0"):
        ceal_selection(table, 2, pseudo_per_label=-1.0)


def test_k_beyond_the_pool_and_an_empty_pool(make_table: MakeTable) -> None:
    table = make_table(ENTROPY, confidence=CONFIDENCE)
    everything = ceal_selection(table, 100)
    assert sorted(everything.query) == list(range(len(ENTROPY))) and everything.pseudo == ()
    empty = ceal_selection(make_table([]), 3)
    assert empty.query == () and empty.pseudo == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"round_index": -1}, "round must be >= 0"), ({"decay": -0.1}, "decay must be finite and >= 0")],
)
def test_bad_parameters_say_what_to_change(make_table: MakeTable, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ceal_selection(make_table([0.1]), 1, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0, 0.01, allow_nan=False), min_size=0, max_size=20),
    st.integers(0, 25),
    st.integers(0, 20),
    st.sets(st.integers(0, 19)),
)
def test_pseudo_labels_are_thresholded_confident_and_never_queried_or_excluded(
    make_table: MakeTable, entropy: list[float], k: int, round_index: int, exclude_candidates: set[int]
) -> None:
    table = make_table(entropy)
    exclude = {i for i in exclude_candidates if i < len(entropy)}
    selection = ceal_selection(table, k, round_index=round_index, exclude=exclude)
    threshold = ceal_threshold(round_index)
    pseudo, query = set(selection.pseudo), set(selection.query)
    assert not pseudo & query and not pseudo & exclude and not query & exclude
    assert all(entropy[i] < threshold for i in pseudo)
    free = set(range(len(entropy))) - exclude - query
    assert pseudo == {i for i in free if entropy[i] < threshold}  # no cap: every one that passes
    assert list(selection.pseudo_scores) == sorted(selection.pseudo_scores, reverse=True)
    assert list(selection.pseudo_scores) == [table.confidence[i] for i in selection.pseudo]


@given(
    st.lists(st.one_of(st.sampled_from([0.0, 0.001, 0.2]), st.floats(0, 0.5), st.just(np.nan)), max_size=30),
    st.integers(0, 35),
    st.integers(0, 10),
    st.sets(st.integers(0, 29)),
)
def test_partial_ranking_matches_a_full_sort(
    make_table: MakeTable, entropy: list[float], k: int, cap: int, exclude_candidates: set[int]
) -> None:
    # The query is the free rows sorted by entropy (highest first, ties to the lower index, NaN last), cut at k;
    # a capped pseudo list is the uncapped list's prefix: the top-k partition must not change either order.
    table = make_table(entropy)
    exclude = {i for i in exclude_candidates if i < len(entropy)}
    free = [i for i in range(len(entropy)) if i not in exclude]
    expected = sorted(free, key=lambda i: (np.isnan(entropy[i]), -np.nan_to_num(entropy[i]), i))[:k]
    capped = ceal_selection(table, k, round_index=3, exclude=exclude, max_pseudo=cap)
    uncapped = ceal_selection(table, k, round_index=3, exclude=exclude)
    assert list(capped.query) == expected == list(uncapped.query)
    assert capped.pseudo == uncapped.pseudo[:cap]
