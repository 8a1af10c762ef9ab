from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.selection import ScoreTable, bald_selection, power_bald_selection

MakeTable = Callable[..., ScoreTable]


def test_the_draw_follows_mutual_information(make_table: MakeTable) -> None:
    """With k = 1 the first pick is row i with probability MI_i / ΣMI (β = 1): checked over 4,000 seeds."""
    mi = np.array([0.1, 0.2, 0.3, 0.4])
    table = make_table([0.5] * 4, mutual_information=mi)
    firsts = np.bincount([power_bald_selection(table, 1, seed=s).query[0] for s in range(4000)], minlength=4)
    expected = 4000 * mi / mi.sum()
    chi2 = float(((firsts - expected) ** 2 / expected).sum())
    assert chi2 < 16.3  # χ² with 3 degrees of freedom, p = 0.001


def test_beta_sharpens_towards_top_k_bald(make_table: MakeTable) -> None:
    rng = np.random.default_rng(0)
    table = make_table(rng.uniform(0, 1, 40), mutual_information=rng.uniform(0.0, 0.1, 40))
    top = set(bald_selection(table, 10).query)
    overlap = {
        beta: np.mean([len(top & set(power_bald_selection(table, 10, seed=s, beta=beta).query)) for s in range(50)])
        for beta in (1.0, 50.0)
    }
    assert overlap[1.0] < 8 and overlap[50.0] > 9.5


def test_same_seed_same_list_and_prefixes_agree(make_table: MakeTable) -> None:
    rng = np.random.default_rng(1)
    table = make_table(rng.uniform(0, 1, 30), mutual_information=rng.uniform(0.0, 0.1, 30))
    a, b = power_bald_selection(table, 8, seed=7), power_bald_selection(table, 8, seed=7)
    assert a == b and a.strategy == "power_bald"
    assert power_bald_selection(table, 3, seed=7).query == a.query[:3]  # a shorter list is the same draw's head
    assert power_bald_selection(table, 8, seed=8).query != a.query
    assert a.scores == tuple(float(table.mutual_information[i]) for i in a.query)
    assert "PowerBALD, seed 7" in a.reasons[0] and "by MI alone ranked" in a.reasons[0]


def test_zero_and_missing_scores_come_last(make_table: MakeTable) -> None:
    table = make_table([0.5] * 5, mutual_information=[0.0, np.nan, 0.01, 0.0, 0.02])
    for seed in range(20):
        query = power_bald_selection(table, 5, seed=seed).query
        assert set(query[:2]) == {2, 4} and set(query[2:4]) == {0, 3} and query[4] == 1


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_beta_must_be_positive(make_table: MakeTable, beta: float) -> None:
    with pytest.raises(ValueError, match="beta must be a positive number"):
        power_bald_selection(make_table([0.1, 0.2]), 1, beta=beta)
