"""CEAL (Wang et al. 2017; Gorriz et al. 2017): the human labels the most uncertain, the model the surest.

The k free images of highest predictive entropy go to the radiologist. Of the rest, those whose entropy is
below δ_r = max(δ_0 − d·r, 0) (round r) are pseudo-label candidates, most confident first: the threshold
tightens every round, as the model takes on more of the labelling. Confidence alone is no quality gate for a
weak model (on the simulation's data the most confident quarter of a round-0 model's masks had Dice 0.40 and a
quarter were empty), so a pseudo-label must also predict a lesion (an empty mask is never one), may come only
from round `warmup_rounds` on, and their number may be capped relative to the human labels in hand
(`pseudo_per_label` × the excluded rows). Two bugs of the original Keras code are
ruled out by construction: pseudo indices address the same table rows as the query (never a sub-array),
and no image becomes a pseudo-label without passing the threshold.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ceal.service.errors import InvalidInput

from ._ranking import (
    available_indices,
    check_k,
    describe,
    rank_descending,
    rank_phrase,
    ranked_selection,
)
from .cost import AnnotationCostModel
from .table import MEASURES, ScoreTable, Selection

__all__ = ["DEFAULT_DECAY", "DEFAULT_DELTA_0", "ceal_selection", "ceal_threshold"]

# Wang et al. 2017's values, for mean per-pixel entropy in nats (a binary mask's maximum is ln 2 ≈ 0.69).
DEFAULT_DELTA_0 = 0.005
DEFAULT_DECAY = 0.00033


def ceal_threshold(round_index: int, *, delta_0: float = DEFAULT_DELTA_0, decay: float = DEFAULT_DECAY) -> float:
    """δ_r = max(δ_0 − decay · round_index, 0): the entropy a pseudo-label must stay below in round r."""
    if round_index < 0:
        raise InvalidInput(f"round must be >= 0 (the active-learning round, from 0); got {round_index}")
    if not (np.isfinite(delta_0) and delta_0 >= 0):
        raise InvalidInput(f"delta_0 must be a finite entropy >= 0; got {delta_0}")
    if not (np.isfinite(decay) and decay >= 0):
        raise InvalidInput(f"decay must be finite and >= 0, so the threshold tightens each round; got {decay}")
    return max(delta_0 - decay * round_index, 0.0)


def ceal_selection(
    table: ScoreTable,
    k: int,
    *,
    round_index: int = 0,
    delta_0: float = DEFAULT_DELTA_0,
    decay: float = DEFAULT_DECAY,
    max_pseudo: int | None = None,
    pseudo_per_label: float | None = None,
    warmup_rounds: int = 0,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """The k most uncertain free rows for the human, plus pseudo-label candidates.

    Pseudo candidates (none before round `warmup_rounds`): free rows not queried, with entropy <
    ceal_threshold(round_index, ...), a finite confidence and a non-empty predicted mask (components >= 1),
    ranked by confidence (highest first, ties to the lower index), at most `max_pseudo` of them and at most
    floor(`pseudo_per_label` × len(exclude)) (None: no cap). scores: the entropy of each query item;
    pseudo_scores: the confidence.
    """
    k = check_k(k)
    if max_pseudo is not None and max_pseudo < 0:
        raise InvalidInput(f"max_pseudo must be >= 0 or None (no cap); got {max_pseudo}")
    if pseudo_per_label is not None and not (np.isfinite(pseudo_per_label) and pseudo_per_label >= 0):
        raise InvalidInput(f"pseudo_per_label must be a finite number >= 0 or None (no cap); got {pseudo_per_label}")
    if warmup_rounds < 0:
        raise InvalidInput(f"warmup_rounds must be >= 0 (rounds without pseudo-labels); got {warmup_rounds}")
    threshold = ceal_threshold(round_index, delta_0=delta_0, decay=decay)
    entropy, confidence = table.entropy, table.confidence
    pool = available_indices(len(table), exclude)
    query = rank_descending(entropy, pool, k)  # partial partition: O(M), not a full sort

    queried = np.zeros(len(table), dtype=np.bool_)
    queried[query] = True
    rest = pool[~queried[pool]]  # (M - k,) still ascending
    lesion = table.components[rest] >= 1  # an empty predicted mask is never a pseudo-label (NaN fails too)
    sure = rest[(entropy[rest] < threshold) & np.isfinite(confidence[rest]) & lesion]  # NaN entropy fails
    cap = max_pseudo
    if pseudo_per_label is not None:
        by_labels = int(np.floor(pseudo_per_label * (len(table) - pool.size)))
        cap = by_labels if cap is None else min(cap, by_labels)
    pseudo = rank_descending(confidence, sure, cap) if round_index >= warmup_rounds else sure[:0]

    label = MEASURES["entropy"]
    reasons = tuple(
        f"{describe(label, float(entropy[i]))}, {rank_phrase(p + 1, pool.size)}: "
        "among the most uncertain, so a radiologist should draw it"
        for p, i in enumerate(query)
    )
    pseudo_reasons = tuple(
        f"confidence {confidence[i]:.3g}, {label} {entropy[i]:.3g} below the round-{round_index} "
        f"threshold {threshold:.3g}; not queried and not already labelled, so the model's mask may stand in"
        for i in pseudo
    )
    return ranked_selection(
        table,
        query,
        entropy,
        reasons,
        strategy="ceal",
        cost_model=cost_model,
        pseudo=tuple(int(i) for i in pseudo),
        pseudo_scores=tuple(float(confidence[i]) for i in pseudo),
        pseudo_reasons=pseudo_reasons,
    )
