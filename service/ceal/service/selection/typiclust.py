"""TypiClust (Hacohen, Dekel & Weinshall, "Active Learning on a Budget", ICML 2022): typical images of the
regions of the pool that no label covers yet.

With few labels, the images a model is least sure of are often the atypical ones (faint, cluttered,
artefacts), which teach it less than typical ones; the paper shows uncertainty sampling losing to random in
that regime and typical-and-diverse picks winning. Here the embedding is the model's encoder descriptor (the
bottleneck features pool scoring keeps), scaled to unit length.

Every row of the table (free and excluded: labelled or leased, which count as covered) is clustered by
k-means into min(|excluded| + k, `max_clusters`, N) clusters (seeded k-means++ start; fitted on at most
FIT_ROWS rows drawn at random and assigned to all, so a pool of 100,000 costs seconds). Then k times: of the
clusters that still have a free row, the one with the fewest covered rows (ties: the larger cluster, then the
lower cluster number) gives its most typical free row, and that cluster counts one more covered row. An image's
typicality is 1 / the mean Euclidean distance to its `neighbours` nearest other rows of its cluster
(0 when it has none: a cluster of one).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from scipy.cluster.vq import kmeans2, vq
from scipy.spatial.distance import cdist

from ceal.service.errors import InvalidInput

from ._ranking import available_indices, check_k, ranked_selection
from .cost import AnnotationCostModel
from .suggestive import unit_rows
from .table import FloatArray, IndexArray, ScoreTable, Selection

__all__ = ["NEIGHBOURS", "kmeans_plus_plus", "typicality", "typiclust_selection"]

NEIGHBOURS = 20  # the paper's K for typicality
MAX_CLUSTERS = 500  # the paper's cap on k-means clusters
FIT_ROWS = 20_000  # k-means is fitted on at most this many rows


def typicality(rows: npt.NDArray[np.float32], neighbours: int = NEIGHBOURS, chunk: int = 1024) -> FloatArray:
    """(M,) 1 / mean distance to the min(`neighbours`, M - 1) nearest other rows of the (M, D) `rows`
    (that distance floored at 1e-12, for duplicates); 0 for a single row, which has no neighbours.
    Distances are computed `chunk` rows at a time, so memory is O(chunk · M), not O(M²)."""
    m = rows.shape[0]
    n = min(neighbours, m - 1)
    if n < 1:
        return np.zeros(m)
    x = rows.astype(np.float64)
    squared = np.sum(x * x, axis=1)
    out: FloatArray = np.empty(m)
    for start in range(0, m, chunk):
        block = slice(start, min(start + chunk, m))
        dist = np.sqrt(np.maximum(squared[block, None] + squared[None, :] - 2.0 * (x[block] @ x.T), 0.0))
        dist[np.arange(dist.shape[0]), np.arange(start, block.stop)] = np.inf  # not its own neighbour
        nearest = np.partition(dist, n - 1, axis=1)[:, :n]  # the n smallest, any order
        out[block] = 1.0 / np.maximum(nearest.mean(axis=1), 1e-12)
    return out


def kmeans_plus_plus(data: npt.NDArray[np.float64], k: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """(k, D) k-means++ seeds (Arthur & Vassilvitskii 2007) of the (N, D) `data`: the centres scipy's
    `kmeans2(minit="++")` draws from the same generator, found in O(N·k·D) by keeping each row's distance to
    its nearest seed (scipy recomputes it against every seed so far each time: O(N·k²·D), 500 clusters of
    20,000 rows took minutes)."""
    seeds = np.empty((k, data.shape[1]))
    seeds[0] = data[rng.integers(data.shape[0], dtype=np.int64)]
    nearest = np.full(data.shape[0], np.inf)
    for i in range(1, k):
        nearest = np.minimum(nearest, cdist(seeds[i - 1 : i], data, metric="sqeuclidean")[0])
        cumulative = (nearest / nearest.sum()).cumsum()
        seeds[i] = data[int(np.searchsorted(cumulative, rng.uniform()))]
    return seeds


def _clusters(unit: npt.NDArray[np.float32], n_clusters: int, seed: int) -> IndexArray:
    """(N,) k-means cluster numbers of the unit rows (k-means++ start, seeded), fitted on at most
    FIT_ROWS of them drawn at random (a large pool's clusters cost no more than that) and assigned to all; at
    most as many clusters as distinct rows (duplicates, or descriptors that are all zero, make fewer)."""
    rng = np.random.default_rng(seed)
    x = unit.astype(np.float64)
    fit = x if x.shape[0] <= FIT_ROWS else x[np.sort(rng.choice(x.shape[0], FIT_ROWS, replace=False))]
    n_clusters = min(n_clusters, len(np.unique(fit, axis=0)))  # no more clusters than distinct rows
    if n_clusters <= 1:
        return np.zeros(unit.shape[0], dtype=np.int64)
    with warnings.catch_warnings():  # an empty cluster (duplicate rows) is fine: it is simply never picked
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        centres, _ = kmeans2(fit, kmeans_plus_plus(fit, n_clusters, rng), minit="matrix")
    labels, _ = vq(x, centres)
    return np.asarray(labels, dtype=np.int64)


def typiclust_selection(
    table: ScoreTable,
    k: int,
    *,
    seed: int = 0,
    neighbours: int = NEIGHBOURS,
    max_clusters: int = MAX_CLUSTERS,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """k free rows, each the most typical free row of the least-covered cluster (see the module docstring).
    Scores: each pick's typicality."""
    k = check_k(k)
    if table.descriptors is None:
        raise InvalidInput(
            "typiclust needs descriptors (encoder bottleneck features) in the score table; "
            "score the pool with descriptors, or choose another strategy"
        )
    if neighbours < 1 or max_clusters < 1:
        raise InvalidInput(f"neighbours and max_clusters must be >= 1; got {neighbours} and {max_clusters}")
    n = len(table)
    pool = available_indices(n, exclude)
    free = np.zeros(n, dtype=np.bool_)
    free[pool] = True
    k_eff = min(k, pool.size)
    unit = unit_rows(table.descriptors)
    n_clusters = min(n - pool.size + k_eff, max_clusters, n)
    labels = _clusters(unit, n_clusters, seed)
    n_found = int(labels.max()) + 1 if n else 0
    size = np.bincount(labels, minlength=n_found)
    covered = np.bincount(labels[~free], minlength=n_found)
    free_left = size - covered  # free rows per cluster
    typical = np.full(n, np.nan)  # filled per cluster when one is first picked from
    chosen: list[int] = []
    why: list[str] = []
    for _ in range(k_eff):
        open_clusters = np.flatnonzero(free_left > 0)
        # fewest covered first, then the larger cluster, then the lower number
        c = int(open_clusters[np.lexsort((open_clusters, -size[open_clusters], covered[open_clusters]))[0]])
        members = labels == c
        if np.isnan(typical[int(np.argmax(members))]):
            typical[members] = typicality(unit[members], neighbours)
        candidates = np.flatnonzero(free & members)
        row = int(candidates[np.argmax(typical[candidates])])  # first of equals: the lower row
        why.append(
            f"the most typical free image of cluster {c + 1} of {n_found} ({int(size[c])} images, "
            f"{int(covered[c])} already labelled or leased): typicality {typical[row]:.3g} "
            f"(1 / mean distance to its {min(neighbours, int(size[c]) - 1)} nearest cluster neighbours)"
        )
        chosen.append(row)
        free[row] = False
        covered[c] += 1
        free_left[c] -= 1
    query = np.array(chosen, dtype=np.int64)
    return ranked_selection(table, query, typical, tuple(why), strategy="typiclust", cost_model=cost_model)
