from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from scipy.cluster.vq import kmeans2

from ceal.service.errors import InvalidInput
from ceal.service.selection import ScoreTable, typicality, typiclust_selection, unit_rows
from ceal.service.selection.typiclust import kmeans_plus_plus

MakeTable = Callable[..., ScoreTable]

SIZES = (10, 8, 6)  # three blobs of descriptors, rows 0-9, 10-17, 18-23


def _blobs(make_table: MakeTable, seed: int = 0) -> ScoreTable:
    """Three tight blobs around orthogonal directions (the strategy clusters unit rows)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4)[:3] * 5.0
    rows = np.concatenate([centres[b] + rng.normal(0, 0.1, (n, 4)) for b, n in enumerate(SIZES)])
    return make_table(rng.uniform(0, 0.5, len(rows)), descriptors=rows)


def _blob(row: int) -> int:
    return int(np.searchsorted(np.cumsum(SIZES), row, side="right"))


def test_an_outlier_is_less_typical_than_the_crowd() -> None:
    rows = np.array([[0.0], [0.1], [0.2], [0.3], [3.0]], dtype=np.float32)
    values = typicality(rows, neighbours=2)
    assert int(np.argmin(values)) == 4 and int(np.argmax(values)) in (1, 2)
    assert typicality(rows[:1]).tolist() == [0.0]  # no neighbours, not typical


def test_picks_come_from_the_clusters_labels_do_not_cover_largest_first(make_table: MakeTable) -> None:
    table = _blobs(make_table)
    chosen = typiclust_selection(table, 2, seed=1, exclude={0})  # a label in blob 0: 1 + 2 clusters
    assert [_blob(q) for q in chosen.query] == [1, 2]  # uncovered blobs, the larger one first
    assert table.descriptors is not None
    unit = unit_rows(table.descriptors)
    for q in chosen.query:
        members = np.array([r for r in range(sum(SIZES)) if _blob(r) == _blob(q)])
        # the chosen row is its cluster's most typical (the whole blob is one cluster here)
        assert q == members[int(np.argmax(typicality(unit[members])))]
    assert chosen.strategy == "typiclust" and "most typical free image of cluster" in chosen.reasons[0]


def test_without_labels_one_pick_per_cluster_then_the_least_covered(make_table: MakeTable) -> None:
    table = _blobs(make_table, seed=2)
    first = typiclust_selection(table, 3, seed=0)
    assert sorted(_blob(q) for q in first.query) == [0, 1, 2]
    assert first == typiclust_selection(table, 3, seed=0)  # seeded


def test_needs_descriptors(make_table: MakeTable) -> None:
    with pytest.raises(InvalidInput, match="typiclust needs descriptors"):
        typiclust_selection(make_table([0.1, 0.2]), 1)
    with pytest.raises(InvalidInput, match="neighbours and max_clusters must be >= 1"):
        typiclust_selection(_blobs(make_table), 1, neighbours=0)


def test_kmeans_plus_plus_draws_the_seeds_scipy_draws() -> None:
    data = np.random.default_rng(4).normal(size=(300, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty cluster is no matter here
        want, want_labels = kmeans2(data, 60, minit="++", seed=np.random.default_rng(9))
        got, got_labels = kmeans2(data, kmeans_plus_plus(data, 60, np.random.default_rng(9)), minit="matrix")
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_labels, want_labels)


@pytest.mark.parametrize("descriptors", [np.zeros((6, 4)), np.ones((6, 4)), np.full((6, 4), np.nan)])
def test_descriptors_that_do_not_vary_still_give_k_picks_without_warnings(
    make_table: MakeTable, descriptors: np.ndarray
) -> None:
    table = make_table([0.1] * 6, descriptors=descriptors)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 in the k-means++ draw: one cluster per distinct row at most
        chosen = typiclust_selection(table, 3, exclude={0})
    assert len(chosen.query) == 3 and 0 not in chosen.query
