"""Suggestive annotation (Yang et al. 2017): uncertain, and representative of the pool.

Among the `candidates` most uncertain free images, pick k greedily to maximise the coverage
F(S) = Σ_{x in pool} max_{s in S} sim(x, s), with sim the cosine of encoder descriptors clipped at 0.
F is monotone submodular (a facility-location function: non-negative similarities, F(∅) = 0), so greedy
reaches at least (1 − 1/e) of the best k-subset. Greedy is evaluated lazily (Minoux 1978): a candidate's
gain can only shrink as picks are added, so a stale gain is an upper bound and most are never recomputed.
Similarity rows are computed on demand, so memory stays O(pool) rather than O(candidates · pool).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from ceal.service.errors import InvalidInput

from ._ranking import available_indices, check_k, describe, estimate_seconds, rank_descending, rank_phrase
from .cost import AnnotationCostModel
from .table import MEASURES, FloatArray, ScoreTable, Selection

__all__ = ["greedy_representative", "representativeness", "suggestive_selection", "unit_rows"]

Float32Array = npt.NDArray[np.float32]


def unit_rows(descriptors: npt.ArrayLike) -> Float32Array:
    """(N, D) float32 rows scaled to length 1; zero or non-finite rows become zero (similar to nothing)."""
    rows = np.array(descriptors, dtype=np.float32)
    if rows.ndim != 2:
        raise InvalidInput(f"descriptors must be (N, D); got shape {rows.shape}")
    rows[~np.all(np.isfinite(rows), axis=1)] = 0.0
    norms = np.linalg.norm(rows, axis=1, keepdims=True)  # (N, 1)
    unit: Float32Array = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return unit


def _similarity_row(candidate: Float32Array, pool: Float32Array) -> FloatArray:
    """(M,) max(cos(x, candidate), 0) over the (M, D) unit pool rows, for a (D,) unit candidate."""
    row: FloatArray = np.maximum(pool @ candidate, 0.0).astype(np.float64)
    return row


def representativeness(candidates: Float32Array, pool: Float32Array, chosen: Sequence[int]) -> float:
    """F(S) = Σ_{x in pool} max_{s in chosen} max(cos(x, s), 0); 0 for an empty choice.

    candidates: (C, D) unit rows; pool: (M, D) unit rows; chosen: row indices into candidates.
    """
    cover = np.zeros(pool.shape[0], dtype=np.float64)  # (M,)
    for c in chosen:
        cover = np.maximum(cover, _similarity_row(candidates[c], pool))
    return float(cover.sum())


def greedy_representative(candidates: Float32Array, pool: Float32Array, k: int) -> tuple[list[int], list[float]]:
    """Greedy maximisation of `representativeness` over k rows of the (C, D) unit `candidates`.

    Returns (picks, gains): candidate rows in pick order and the coverage each added (non-increasing).
    Each step takes the largest gain; ties go to the lower row, exactly as plain greedy would.
    """
    k = check_k(k)
    cover = np.zeros(pool.shape[0], dtype=np.float64)  # (M,) best similarity of each pool image so far
    # Heap of (-gain bound, row); every bound starts exact (cover = 0).
    heap = [(-float(_similarity_row(candidates[r], pool).sum()), r) for r in range(candidates.shape[0])]
    heapq.heapify(heap)
    picks: list[int] = []
    gains: list[float] = []
    while heap and len(picks) < k:
        _, row = heapq.heappop(heap)
        similarity = _similarity_row(candidates[row], pool)
        gain = float(np.maximum(similarity - cover, 0.0).sum())
        # Take it if no other bound can beat it; an equal bound wins only with a lower row.
        if heap and (-heap[0][0] > gain or (-heap[0][0] == gain and heap[0][1] < row)):
            heapq.heappush(heap, (-gain, row))
            continue
        picks.append(row)
        gains.append(gain)
        cover = np.maximum(cover, similarity)
    return picks, gains


def suggestive_selection(
    table: ScoreTable,
    k: int,
    *,
    candidates: int | None = None,
    measure: str = "mutual_information",
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """k free rows, uncertain and representative: the `candidates` (default 4k) most uncertain by `measure`,
    then greedy coverage of the free pool (see the module docstring).

    Candidates are ordered most uncertain first, so a tie in coverage goes to the more uncertain image.
    scores: the coverage each pick added, in pick order (non-increasing).
    """
    k = check_k(k)
    if table.descriptors is None:
        raise InvalidInput(
            "suggestive annotation needs descriptors (encoder bottleneck features) in the score table; "
            "score the pool with descriptors, or choose another strategy"
        )
    n_candidates = 4 * k if candidates is None else candidates
    if n_candidates < k:
        raise InvalidInput(f"candidates must be >= k ({k}), so there are k images to pick from; got {candidates}")
    values = table.measure(measure)
    pool = available_indices(len(table), exclude)
    ranked = rank_descending(values, pool)  # (M,)
    shortlist = ranked[:n_candidates]  # (C,)
    unit = unit_rows(table.descriptors)
    picks, gains = greedy_representative(unit[shortlist], unit[pool], k)
    query = shortlist[picks]

    label = MEASURES[measure]
    reasons = tuple(
        f"{describe(label, float(values[shortlist[c]]))}, {rank_phrase(c + 1, pool.size)}; "
        f"pick {p + 1} for covering the pool: adds {gain:.3g} to the summed best cosine similarity "
        f"of the {pool.size} pool images"
        for p, (c, gain) in enumerate(zip(picks, gains, strict=True))
    )
    return Selection(
        query=tuple(int(i) for i in query),
        scores=tuple(gains),
        reasons=reasons,
        estimated_seconds=estimate_seconds(table, query, cost_model),
        strategy="suggestive",
    )
