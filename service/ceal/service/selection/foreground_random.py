"""Foreground-aware random sampling: the baseline that nnActive (Lüth et al., 2025) found most query methods
fail to beat. Random among the images whose predicted mask is non-empty, stratified by the predicted
foreground's size, so a batch spans small and large findings instead of whatever plain random happens to hit.

The free rows with a non-empty prediction (components > 0) are sorted by predicted foreground size (the
table's `foreground_fraction`, which pool scoring and the simulation fill; the predicted boundary length for a
table without it) and cut into k strata of equal count; one row is drawn from each. When fewer than k rows
have foreground, the rest are drawn at random from the empty ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ._ranking import available_indices, check_k, ranked_selection
from .cost import AnnotationCostModel
from .table import ScoreTable, Selection

__all__ = ["random_foreground_selection"]


def random_foreground_selection(
    table: ScoreTable,
    k: int,
    *,
    seed: int = 0,
    exclude: Iterable[int] = frozenset(),
    cost_model: AnnotationCostModel | None = None,
) -> Selection:
    """k free rows: one at random from each of k predicted-size strata of the rows with predicted foreground,
    then random empty ones if those run short. Scores: the size measure (foreground fraction, or boundary
    length in pixels for a table without it)."""
    k = check_k(k)
    rng = np.random.default_rng(seed)
    pool = available_indices(len(table), exclude)
    measure = table.boundary_length if table.foreground_fraction is None else table.foreground_fraction
    size = measure[pool]
    has_fg = (table.components[pool] > 0) & np.isfinite(size)
    fg = pool[has_fg][np.argsort(size[has_fg], kind="stable")]
    chosen: list[int] = []
    strata = np.array_split(fg, min(k, fg.size)) if fg.size else []
    for stratum in strata:
        chosen.append(int(rng.choice(stratum)))
    rest = pool[~has_fg]
    extra = rng.permutation(rest)[: k - len(chosen)] if len(chosen) < k else rest[:0]
    query = np.array([*chosen, *extra.tolist()], dtype=np.int64)
    n_fg = len(chosen)
    reasons = tuple(
        (
            f"drawn at random (seed {seed}) from predicted-size stratum {j + 1} of {n_fg} of the {fg.size} "
            "images with predicted foreground (foreground-aware random baseline)"
        )
        if j < n_fg
        else f"drawn at random (seed {seed}) from the {rest.size} images without predicted foreground: too few had any"
        for j in range(query.size)
    )
    return ranked_selection(table, query, measure, reasons, strategy="random_foreground", cost_model=cost_model)
