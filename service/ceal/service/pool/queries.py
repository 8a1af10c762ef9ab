"""Query lists: the pool's fresh scores → a strategy → leased items with reasons, plus pseudo-label candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ceal.service import postprocess
from ceal.service.errors import InvalidInput
from ceal.service.selection import AnnotationCostModel, ScoreTable, get_strategy, rank_series
from ceal.service.selection.registry import SEEDED_STRATEGIES
from ceal.service.store.base import DicomRef, ImageRecord, PoolStore, ScoreRow

DEFAULT_K = 10
DEFAULT_LEASE_SECONDS = 30 * 60
COST_MODEL_LABELS = 500  # the most recent timed human labels the annotation-time model is fitted on
PSEUDO_QUANTILE = 0.25  # CEAL round 0: entropy threshold at this quantile of the free pool; tightens 10 %/round
# CEAL pseudo-labels only once the model has been fine-tuned on some human labels, and never more than the human
# labels in hand (the simulation: a round-0 model's most confident masks had Dice 0.40; docs/simulation.md).
PSEUDO_WARMUP_ROUNDS = 2
PSEUDO_PER_LABEL = 1.0
LEASE_RESERVE = 3  # rank this many times k when leasing, to absorb concurrent annotators


@dataclass(frozen=True)
class QueryRequest:
    pool: str
    strategy: str = "ceal"
    k: int = DEFAULT_K
    budget_seconds: float = 0.0
    annotator: str = ""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    series: bool = False
    round_index: int = 0
    seed: int = 0
    max_pseudo: int = 0


@dataclass(frozen=True)
class QueryItem:
    record: ImageRecord
    rank: int
    score: float
    reason: str
    estimated_seconds: float
    lease_expires_at: float | None = None
    slice_ids: tuple[str, ...] = ()
    slice_dicom: tuple[DicomRef | None, ...] = ()  # the DICOM reference of each of slice_ids


@dataclass(frozen=True)
class QueryResult:
    items: list[QueryItem]
    pseudo: list[tuple[str, float]] = field(default_factory=list)
    unscored: int = 0


def build_table(rows: list[ScoreRow], records: dict[str, ImageRecord]) -> ScoreTable:
    """Fresh score rows → the selection code's ScoreTable (descriptors when every row has one)."""
    descriptors = None
    if rows and all(r.descriptor is not None for r in rows):
        descriptors = np.stack([r.descriptor for r in rows]).astype(np.float32)  # type: ignore[misc]
    return ScoreTable(
        image_ids=tuple(r.image_id for r in rows),
        entropy=np.array([r.entropy for r in rows], dtype=np.float64),
        mutual_information=np.array([r.mutual_information for r in rows], dtype=np.float64),
        variance=np.array([r.variance for r in rows], dtype=np.float64),
        confidence=np.array([r.confidence for r in rows], dtype=np.float64),
        boundary_length=np.array([r.boundary_length for r in rows], dtype=np.float64),
        components=np.array([r.components for r in rows], dtype=np.float64),
        descriptors=descriptors,
        series_keys=tuple(records[r.image_id].series_key for r in rows),
    )


def fit_cost_model(store: PoolStore, pool: str) -> AnnotationCostModel:
    """Annotation time from the pool's own timed human labels (mask boundary and components → seconds)."""
    timed = [lab for lab in store.latest_labels(pool, {"human"}) if lab.seconds_spent > 0][-COST_MODEL_LABELS:]
    model = AnnotationCostModel()
    if not timed:
        return model
    masks = [lab.mask != 0 for lab in timed]
    return model.fit(
        np.array([postprocess.boundary_length(m) for m in masks], dtype=np.float64),
        np.array([postprocess.component_count(m) for m in masks], dtype=np.float64),
        np.array([lab.seconds_spent for lab in timed], dtype=np.float64),
    )


def _strategy_params(req: QueryRequest, table: ScoreTable, free: np.ndarray) -> dict[str, Any]:
    if req.strategy in SEEDED_STRATEGIES:
        return {"seed": req.seed}
    if req.strategy == "cost_sensitive":
        if req.budget_seconds <= 0:
            raise InvalidInput("strategy cost_sensitive needs budget_seconds > 0 (the annotation time available)")
        return {"budget_seconds": req.budget_seconds}
    if req.strategy == "ceal":
        entropy = table.entropy[free]
        entropy = entropy[np.isfinite(entropy)]
        delta_0 = float(np.quantile(entropy, PSEUDO_QUANTILE)) if len(entropy) else 0.0
        return {
            "round_index": req.round_index,
            "delta_0": delta_0,
            "decay": delta_0 / 10,
            "max_pseudo": req.max_pseudo,
            "pseudo_per_label": PSEUDO_PER_LABEL,
            "warmup_rounds": PSEUDO_WARMUP_ROUNDS,
        }
    return {}


def query_list(store: PoolStore, model_name: str, model_version: int, req: QueryRequest) -> QueryResult:
    records = {r.image_id: r for r in store.list_images(req.pool)}
    rows = [r for r in store.score_rows(req.pool, model_name, model_version) if r.image_id in records]
    unscored = len(records) - len(rows)
    table = build_table(rows, records)
    labelled = store.labelled_ids(req.pool, "human")
    leased_elsewhere = {lease.image_id for lease in store.active_leases(req.pool) if lease.annotator != req.annotator}
    index = {image_id: i for i, image_id in enumerate(table.image_ids)}
    exclude = {index[i] for i in labelled | leased_elsewhere if i in index}
    free = np.array(sorted(set(range(len(table))) - exclude), dtype=np.int64)
    cost_model = fit_cost_model(store, req.pool)
    k = req.k or DEFAULT_K
    if req.series:
        ranked = rank_series(table, k, exclude=exclude, cost_model=cost_model)
        groups = [[table.image_ids[i] for i in members] for members in ranked.members]
        items = _lease_and_wrap(
            store,
            req,
            records,
            [g[0] for g in groups],
            ranked.scores,
            ranked.reasons,
            ranked.estimated_seconds,
            groups,
            k,
        )
        return QueryResult(items, [], unscored)
    strategy = get_strategy(req.strategy)
    # Cost-sensitive fills a time budget: k only caps the list, so let the budget decide. Others rank a reserve
    # beyond k, so an annotator racing another one for the same top items still gets k leases.
    k_eff = len(table) if req.strategy == "cost_sensitive" else (LEASE_RESERVE * k if req.annotator else k)
    selection = strategy(table, k_eff, exclude=exclude, cost_model=cost_model, **_strategy_params(req, table, free))
    limit = len(selection.query) if req.strategy == "cost_sensitive" else k
    items = _lease_and_wrap(
        store,
        req,
        records,
        [table.image_ids[i] for i in selection.query],
        selection.scores,
        selection.reasons,
        selection.estimated_seconds,
        None,
        limit,
    )
    pseudo = [(table.image_ids[i], s) for i, s in zip(selection.pseudo, selection.pseudo_scores, strict=True)]
    return QueryResult(items, pseudo, unscored)


def _lease_and_wrap(
    store: PoolStore,
    req: QueryRequest,
    records: dict[str, ImageRecord],
    ids: list[str],
    scores: Any,
    reasons: Any,
    seconds: Any,
    groups: list[list[str]] | None,
    limit: int,
) -> list[QueryItem]:
    """Lease (when an annotator is named) the first `limit` free items in ranked order and wrap them."""
    info = {i: (float(s), str(r), float(t)) for i, s, r, t in zip(ids, scores, reasons, seconds, strict=True)}
    expiry: dict[str, float | None] = dict.fromkeys(ids[:limit])
    if req.annotator:
        leases = store.acquire_leases(req.pool, ids, req.annotator, limit, req.lease_seconds or DEFAULT_LEASE_SECONDS)
        expiry = {lease.image_id: lease.expires_at for lease in leases}
    members = dict(zip(ids, groups, strict=True)) if groups is not None else {}
    out: list[QueryItem] = []
    for image_id in ids:
        if image_id not in expiry:
            continue  # taken by another annotator between ranking and leasing
        score, reason, secs = info[image_id]
        slices = tuple(members.get(image_id, ()))
        out.append(
            QueryItem(
                records[image_id],
                len(out) + 1,
                score,
                reason,
                secs,
                expiry[image_id],
                slices,
                tuple(records[s].dicom if s in records else None for s in slices),
            )
        )
    return out
