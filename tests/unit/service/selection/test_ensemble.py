from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.errors import InvalidInput
from ceal.service.selection import ScoreTable, ensemble_selection, version_disagreement
from ceal.service.selection.ensemble import packed_disagreement
from ceal.service.selection.policy import QueryPolicy

MakeTable = Callable[..., ScoreTable]


def test_disagreement_is_mean_pairwise_one_minus_dice() -> None:
    a = np.zeros((3, 4, 4), np.uint8)
    a[0, :2] = 1  # image 0: 8 px
    b = a.copy()
    b[0, :1] = 0  # image 0: 4 px inside a's 8 → Dice 2·4/12
    b[1, 0, 0] = 1  # image 1: a empty, b one pixel → Dice 0
    c = a.copy()  # same as a
    d = version_disagreement(np.stack([a, b, c]))
    # pairs (a,b), (a,c), (b,c): image 0 → (1/3 + 0 + 1/3) / 3, image 1 → (1 + 0 + 1) / 3, image 2 all empty → 0
    assert d == pytest.approx([2 / 9, 2 / 3, 0.0])


def test_disagreement_needs_two_versions() -> None:
    with pytest.raises(InvalidInput, match="at least 2 versions"):
        version_disagreement(np.zeros((1, 2, 4, 4), np.uint8))


@pytest.mark.parametrize(("members", "width"), [(2, 8), (3, 13), (3, 1)])
def test_packed_disagreement_equals_the_unpacked_one(members: int, width: int) -> None:
    rng = np.random.default_rng(width)
    masks = rng.random((members, 20, 6, width)) < rng.uniform(0, 0.6, (members, 20, 1, 1))
    masks[:, :3] = False  # empty in every version: agreement
    bits = np.packbits(masks, axis=3)  # (K, N, 6, ceil(width / 8)), padding bits 0
    np.testing.assert_allclose(packed_disagreement(bits), version_disagreement(masks), rtol=0, atol=1e-12)
    with pytest.raises(InvalidInput, match="at least 2 versions"):
        packed_disagreement(bits[:1])


def test_ensemble_ranks_by_disagreement_and_skips_excluded(make_table: MakeTable) -> None:
    table = make_table(
        [0.1] * 5, mutual_information=[0.5, 0.4, 0.3, 0.2, 0.1], version_disagreement=[0.1, 0.9, np.nan, 0.5, 0.7]
    )
    chosen = ensemble_selection(table, 3, exclude={1})
    assert chosen.query == (4, 3, 0) and chosen.strategy == "ensemble"
    assert "disagreement between the last model versions" in chosen.reasons[0]


def test_without_earlier_versions_it_ranks_by_mutual_information(make_table: MakeTable) -> None:
    table = make_table([0.1] * 4, mutual_information=[0.1, 0.4, 0.3, 0.2])
    chosen = ensemble_selection(table, 2)
    assert chosen.query == (1, 2) and "no earlier versions" in chosen.reasons[0]


def test_the_policy_plans_it_like_the_service(make_table: MakeTable) -> None:
    table = make_table([0.1] * 4, version_disagreement=[0.0, 0.2, 0.1, 0.3])
    plan = QueryPolicy().plan("ensemble", table, 2)
    assert plan.run(cost_model=None).query == (3, 1)  # type: ignore[arg-type]
