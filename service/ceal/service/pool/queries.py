"""Query lists: the pool's fresh scores → a strategy → leased items with reasons, plus pseudo-label candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ceal.service import postprocess
from ceal.service.pool.ensemble import ENSEMBLE_STRATEGY, with_version_disagreement
from ceal.service.selection import AnnotationCostModel, ScoreTable, rank_series, series_measure
from ceal.service.selection._ranking import estimate_seconds
from ceal.service.selection.policy import QueryPolicy
from ceal.service.selection.scores import score_table
from ceal.service.store.base import DicomRef, GroupLevel, ImageRecord, PoolStore, ScoreRow

DEFAULT_K = 10
COST_MODEL_LABELS = 500  # the most recent timed human labels the annotation-time model is fitted on
POLICY = QueryPolicy()  # the served query policy: the strategy parameters per request and round
LEASE_RESERVE = 3  # rank this many times k when leasing, to absorb concurrent annotators


QueryLevel = Literal["image", "series", "study"]


@dataclass(frozen=True)
class QueryRequest:
    """level "series" / "study": rank whole series or studies, and lease every slice of each together."""

    pool: str
    lease_seconds: float = field(kw_only=True)  # how long leases last (the request's, else the server's)
    strategy: str = "ceal"
    k: int = DEFAULT_K
    budget_seconds: float = 0.0
    annotator: str = ""
    level: QueryLevel = "image"
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
    """note: why the list is shorter than asked (empty when it is not)."""

    items: list[QueryItem]
    pseudo: list[tuple[str, float]] = field(default_factory=list)
    unscored: int = 0
    note: str = ""


def build_table(rows: list[ScoreRow], records: dict[str, ImageRecord], group: str = "series") -> ScoreTable:
    """Fresh score rows → the selection code's ScoreTable (`selection.scores.score_table`). Its series_keys
    are the images' study keys when group == "study"."""
    return score_table(rows, [_group_key(records[r.image_id], group) for r in rows])


def _group_key(record: ImageRecord, level: str) -> str:
    return record.study_key if level == "study" else record.series_key


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


def query_list(store: PoolStore, model_name: str, model_version: int, req: QueryRequest) -> QueryResult:
    records = {r.image_id: r for r in store.list_images(req.pool)}
    rows = [r for r in store.score_rows(req.pool, model_name, model_version) if r.image_id in records]
    unscored = len(records) - len(rows)
    table = build_table(rows, records, req.level)
    if req.strategy == ENSEMBLE_STRATEGY:
        table = with_version_disagreement(table, store.version_masks(req.pool, model_name), model_version)
    labelled = store.labelled_ids(req.pool, "human")
    leased_elsewhere = {lease.image_id for lease in store.active_leases(req.pool) if lease.annotator != req.annotator}
    index = {image_id: i for i, image_id in enumerate(table.image_ids)}
    exclude = {index[i] for i in labelled | leased_elsewhere if i in index}
    free = np.array(sorted(set(range(len(table))) - exclude), dtype=np.int64)
    cost_model = fit_cost_model(store, req.pool)
    k = req.k or DEFAULT_K
    if req.level != "image":
        return QueryResult(
            _group_items(store, req, records, table, labelled, leased_elsewhere, cost_model, k), [], unscored
        )
    # Rank a reserve beyond k, so an annotator racing another one for the same top items still gets k leases
    # (a budget-filling strategy ranks the whole table: the budget decides, k only caps the list).
    plan = POLICY.plan(
        req.strategy,
        table,
        LEASE_RESERVE * k if req.annotator else k,
        exclude=exclude,
        round_index=req.round_index,
        seed=req.seed,
        budget_seconds=req.budget_seconds,
        max_pseudo=req.max_pseudo,
    )
    selection = plan.run(cost_model)
    limit = len(selection.query) if plan.spec.fills_budget else k
    items = _lease_and_wrap(
        store,
        req,
        records,
        [table.image_ids[i] for i in selection.query],
        selection.scores,
        selection.reasons,
        selection.estimated_seconds,
        limit,
    )
    pseudo = [(table.image_ids[i], s) for i, s in zip(selection.pseudo, selection.pseudo_scores, strict=True)]
    return QueryResult(items, pseudo, unscored, _note(req, k, len(items), len(records), table, free, cost_model))


def _note(
    req: QueryRequest,
    k: int,
    got: int,
    images: int,
    table: ScoreTable,
    free: np.ndarray,
    cost_model: AnnotationCostModel,
) -> str:
    """Why `got` items came back where `k` were asked for (a full list, or a budget's, needs no note)."""
    budgeted = req.strategy == "cost_sensitive" and req.level == "image"
    if got >= k or (budgeted and got > 0):
        return ""
    short = "no items" if got == 0 else f"{got} of {k} items"
    if images == 0:
        return f"{short}: pool {req.pool!r} has no images; register some (RegisterImages, `ceal pool register`)"
    if len(table) == 0:
        return f"{short}: no image of pool {req.pool!r} is scored by this model version; run ScorePool first"
    if budgeted:
        quickest = min(estimate_seconds(table, free, cost_model), default=float("nan"))
        return (
            f"{short}: no free image fits the {req.budget_seconds:g} s budget; the quickest is predicted to take "
            f"{quickest:.0f} s; raise budget_seconds"
        )
    unscored = images - len(table)
    return f"{short}: the other images of pool {req.pool!r} are labelled by a human, leased to another annotator" + (
        f", or not scored yet ({unscored}: run ScorePool)" if unscored else ""
    )


def _group_items(
    store: PoolStore,
    req: QueryRequest,
    records: dict[str, ImageRecord],
    table: ScoreTable,
    labelled: set[str],
    leased_elsewhere: set[str],
    cost_model: AnnotationCostModel,
    k: int,
) -> list[QueryItem]:
    """Series or studies ranked by their slices' scores; with an annotator, every unlabelled slice of each
    group is leased together (`PoolStore.acquire_group_leases`), and a group someone else holds any slice of
    is left out. Each item: its most uncertain slice, with every slice of the group in `slice_ids`."""
    taken = {_group_key(records[i], req.level) for i in leased_elsewhere if i in records}
    assert table.series_keys is not None  # build_table always sets the group keys
    exclude = {i for i, key in enumerate(table.series_keys) if key in taken or table.image_ids[i] in labelled}
    measure, note = series_measure(req.strategy, table)
    ranked = rank_series(
        table,
        LEASE_RESERVE * k if req.annotator else k,
        measure=measure,
        note=note,
        exclude=exclude,
        cost_model=cost_model,
    )
    by_key = {key: n for n, key in enumerate(ranked.series_keys)}
    # Slices each group hands out: scored ones most uncertain first, then the unscored, in slice order.
    slices: dict[str, list[str]] = {}
    for key, members in zip(ranked.series_keys, ranked.members, strict=True):
        slices[key] = [table.image_ids[i] for i in members]
    for record in sorted(records.values(), key=lambda r: (r.slice_index, r.image_id)):
        key = _group_key(record, req.level)
        if key in slices and record.image_id not in labelled and record.image_id not in slices[key]:
            slices[key].append(record.image_id)
    expiry: dict[str, float | None] = dict.fromkeys(ranked.series_keys[:k])
    if req.annotator:
        level: GroupLevel = "study" if req.level == "study" else "series"
        granted = store.acquire_group_leases(
            req.pool, ranked.series_keys, req.annotator, k, req.lease_seconds, level=level
        )
        expiry = {}
        for grant in granted:
            expiry[grant.key] = grant.leases[0].expires_at if grant.leases else None
            held = {lease.image_id for lease in grant.leases}
            # what was leased is what is handed out: the ranked order, then slices registered since ranking
            slices[grant.key] = [i for i in slices[grant.key] if i in held] + sorted(held - set(slices[grant.key]))
    out: list[QueryItem] = []
    for key in ranked.series_keys:
        if key not in expiry or not slices[key]:
            continue  # taken by another annotator between ranking and leasing
        n = by_key[key]
        group = tuple(slices[key])
        out.append(
            QueryItem(
                records[group[0]] if group[0] in records else store.get_image(req.pool, group[0]),
                len(out) + 1,
                float(ranked.scores[n]),
                ranked.reasons[n],
                float(ranked.estimated_seconds[n]),
                expiry[key],
                group,
                tuple(records[i].dicom if i in records else None for i in group),
            )
        )
    return out


def _lease_and_wrap(
    store: PoolStore,
    req: QueryRequest,
    records: dict[str, ImageRecord],
    ids: list[str],
    scores: Any,
    reasons: Any,
    seconds: Any,
    limit: int,
) -> list[QueryItem]:
    """Lease (when an annotator is named) the first `limit` free items in ranked order and wrap them."""
    info = {i: (float(s), str(r), float(t)) for i, s, r, t in zip(ids, scores, reasons, seconds, strict=True)}
    expiry: dict[str, float | None] = dict.fromkeys(ids[:limit])
    if req.annotator:
        leases = store.acquire_leases(req.pool, ids, req.annotator, limit, req.lease_seconds)
        expiry = {lease.image_id: lease.expires_at for lease in leases}
    out: list[QueryItem] = []
    for image_id in ids:
        if image_id not in expiry:
            continue  # taken by another annotator between ranking and leasing
        score, reason, secs = info[image_id]
        out.append(QueryItem(records[image_id], len(out) + 1, score, reason, secs, expiry[image_id]))
    return out
