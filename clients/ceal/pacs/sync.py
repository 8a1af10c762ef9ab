"""`sync`: new PACS series → ceal pool and predictions → DICOM SEG + uncertainty Parametric Map → the PACS.

For each series found since the watermark (`ceal.pacs.watermark`) whose modality is wanted (never SEG, OT and
the other derived modalities, so the sync never processes its own outputs):

    retrieve → sort (spatially) → derived UIDs → already in the PACS? skip → decode to 2-D slices
    → register in the pool (series_key = SeriesInstanceUID, study_key = StudyInstanceUID, slice_index)
    → predict every slice (one stream) → SEG (BINARY, or FRACTIONAL; one segment per class for a multi-class
      model) + Parametric Map → store

Then, unless `labels` is off, the radiologists' own SEGs among the series found come back as human labels
(`ceal.pacs.labels`). Filters (`study`, `series_description`) narrow what is synced; `dry_run` lists the series
a run would sync and touches nothing (no prediction, no store, no watermark).

A series that fails is reported with the stage and the reason and the others go on; the watermark is written
at the end and never moves past a failed series, so the next run tries it again. Output UIDs are derived
from the source SOP Instance UIDs, the model and the content (`dicom_out.derived_uids`): a rerun finds them
in the PACS and skips the series before predicting. Messages and logs carry UIDs, never patient data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydicom import Dataset
from tqdm import tqdm

from ceal.client import CealError, Client, ModelInfo, Prediction
from ceal.imaging import PreprocessParams
from ceal.pacs.classes import ClassCode, class_codes, read_mapping
from ceal.pacs.decode import DecodedSlice, decode_dataset, sort_series
from ceal.pacs.dicom_out import (
    DerivedUids,
    build_segmentation,
    build_uncertainty_map,
    check_uid_root,
    derived_uids,
    seg_content,
)
from ceal.pacs.errors import DicomBuildError, PacsError
from ceal.pacs.labels import LabelsReport, import_labels
from ceal.pacs.protocol import Pacs, SeriesInfo
from ceal.pacs.register import register_slices
from ceal.pacs.watermark import next_watermark, read_watermark, with_lookback, write_watermark

__all__ = [
    "DERIVED_MODALITIES",
    "MEASURES",
    "SeriesOutcome",
    "SyncError",
    "SyncOptions",
    "SyncReport",
    "model_classes",
    "resolve_model",
    "sync",
]

_log = logging.getLogger(__name__)

DERIVED_MODALITIES = frozenset({"SEG", "OT", "SR", "PR", "KO", "RTSTRUCT", "REG", "DOC"})
"""Modalities of derived objects (ours among them: SEG and Parametric Map, "OT"): never synced."""
MEASURES = ("entropy", "mutual_information", "variance")
SEG_SERIES_NUMBER = 9901
MAP_SERIES_NUMBER = 9902

Status = Literal["stored", "skipped", "failed"]


class SyncError(PacsError):
    """The sync cannot start: wrong options, no usable model, or an unreadable state file."""


@dataclass(frozen=True)
class SyncOptions:
    """What to sync and how. `since` ("YYYYMMDD") overrides the state file's watermark; `lookback_days` moves
    a stored watermark earlier. `samples` = 0 and `model` = "" take the server's defaults; `seed` makes the
    Monte-Carlo samples reproducible."""

    pool: str = ""
    since: str | None = None
    lookback_days: int = 0
    modalities: frozenset[str] = frozenset({"CT", "MR"})
    fractional: bool = False
    model: str = ""
    samples: int = 0
    seed: int | None = None
    measure: str = "entropy"
    labels: bool = True
    study: str = ""
    accession: str = ""
    series_description: str = ""
    dry_run: bool = False
    uid_root: str = ""
    content_qualification: str = "RESEARCH"
    class_map: Path | None = None
    labelmap: bool = False  # multi-class models: a LABELMAP SEG instead of one BINARY segment per class

    def __post_init__(self) -> None:
        wanted = frozenset(m.strip().upper() for m in self.modalities if m.strip())
        if not wanted:
            raise SyncError("no modalities to sync: pass e.g. --modalities CT,MR")
        if wanted & DERIVED_MODALITIES:
            raise SyncError(
                f"modalities {sorted(wanted & DERIVED_MODALITIES)} hold derived objects (ceal's own SEG and "
                "Parametric Maps among them) and are never synced: pass image modalities such as CT,MR"
            )
        if self.measure not in MEASURES:
            raise SyncError(f"measure {self.measure!r} is not known: choose one of {', '.join(MEASURES)}")
        object.__setattr__(self, "modalities", wanted)
        if self.uid_root:
            try:
                object.__setattr__(self, "uid_root", check_uid_root(self.uid_root))
            except DicomBuildError as exc:
                raise SyncError(str(exc)) from exc

    def wants(self, info: SeriesInfo) -> bool:
        """Whether a found series passes the modality, study, accession and description filters."""
        return (
            info.modality.upper() in self.modalities
            and (not self.study or info.study_uid == self.study)
            and (not self.accession or info.accession == self.accession)
            and self.series_description.lower() in info.series_description.lower()
        )


@dataclass(frozen=True)
class SeriesOutcome:
    """What happened to one series; `error` says the stage and the reason when `status` is "failed"."""

    study_uid: str
    series_uid: str
    modality: str
    watermark: str
    status: Status
    slices: int = 0
    seg_uid: str = ""
    map_uid: str = ""
    error: str = ""


@dataclass(frozen=True)
class SyncReport:
    outcomes: tuple[SeriesOutcome, ...]
    ignored: int  # series found but not of a wanted modality
    model_tag: str  # "name/version" of the model that predicted
    since: str | None  # the watermark this run searched from
    watermark: str | None  # the watermark after this run (written to the state file when one was given)
    failures: tuple[SeriesOutcome, ...] = field(init=False)
    planned: tuple[SeriesInfo, ...] = ()  # a dry run: the series it would sync
    labels: LabelsReport | None = None  # the radiologists' SEGs imported (None when turned off)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failures", tuple(o for o in self.outcomes if o.status == "failed"))

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    def summary(self) -> str:
        if self.planned:
            return f"dry run: {len(self.planned)} series would be synced (model {self.model_tag}); nothing stored"
        return (
            f"{self.count('stored')} series stored, {self.count('skipped')} already done, "
            f"{self.count('failed')} failed, {self.ignored} of other modalities ignored (model {self.model_tag})"
        )


def resolve_model(client: Client, name: str = "") -> tuple[str, int]:
    """(name, latest version) the sync pins for the whole run, so one run never mixes model versions."""
    models = client.list_models(name)
    names = sorted({m.name for m in models})
    if not models:
        what = f"model {name!r}" if name else "any model"
        raise SyncError(f"the ceal server has not loaded {what}: export one into its models folder or pass --model")
    if len(names) > 1:
        raise SyncError(f"the ceal server has several models ({', '.join(names)}): pass --model NAME")
    return names[0], max(m.version for m in models)


def model_classes(client: Client, name: str = "", class_map: Path | None = None) -> list[ClassCode]:
    """The foreground classes of the model the sync pins, coded for SEG segments (`ceal.pacs.classes`)."""
    names = list(_pinned(client, name).class_names) or ["background", "lesion"]
    return class_codes(names, read_mapping(class_map))


def model_params(client: Client, name: str = "") -> PreprocessParams:
    """The preprocessing contract of the model the sync pins (the defaults for a model exported before it),
    so the bridge decodes DICOM exactly as the server would for this model."""
    raw = _pinned(client, name).preprocessing
    if not raw:
        return PreprocessParams()
    try:
        return PreprocessParams.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise SyncError(f"the model's preprocessing is not one this ceal.pacs reads ({exc}): upgrade ceal") from exc


def _pinned(client: Client, name: str) -> ModelInfo:
    model, version = resolve_model(client, name)
    return next(m for m in client.list_models(model) if m.version == version)


def sync(
    pacs: Pacs,
    client: Client,
    options: SyncOptions,
    *,
    state: Path | None = None,
    progress: bool = False,
    destination: Pacs | None = None,
) -> SyncReport:
    """Sync every new series once (see the module doc). Raises `PacsError` / `CealError` only when the run
    cannot start (PACS or server unreachable, no model); a failing series is reported in `SyncReport`.
    `destination`: where the SEG and Parametric Map go (and are looked for on a rerun); `pacs` by default."""
    stored = read_watermark(state) if state is not None else None
    since = options.since if options.since is not None else with_lookback(stored, options.lookback_days)
    name, version = resolve_model(client, options.model)
    tag = f"{name}/{version}"
    classes = model_classes(client, name, options.class_map)
    params = model_params(client, name)
    found = pacs.find_series(since)
    wanted = sorted((i for i in found if options.wants(i)), key=lambda i: (i.watermark, i.study_uid, i.series_uid))
    _log.info("sync from %s: %d series found, %d to check", since or "the beginning", len(found), len(wanted))
    if options.dry_run:
        return SyncReport((), len(found) - len(wanted), tag, since, stored, planned=tuple(wanted))
    outcomes: list[SeriesOutcome] = []
    bar = tqdm(wanted, desc="sync", unit="series", disable=not progress)
    for info in bar:
        outcomes.append(
            _sync_series(pacs, destination or pacs, client, info, options, (name, version, tag), classes, params)
        )
        bar.set_postfix(failed=sum(o.status == "failed" for o in outcomes))
    bar.close()
    watermark = next_watermark(
        stored if options.since is None else options.since,
        [o.watermark for o in outcomes if o.status != "failed"],
        [o.watermark for o in outcomes if o.status == "failed"],
    )
    labels = None
    if options.labels:
        labels = import_labels(
            pacs, client, classes, pool=options.pool, series=found, uid_root=options.uid_root or None, params=params
        )
    report = SyncReport(tuple(outcomes), len(found) - len(wanted), tag, since, watermark, labels=labels)
    if state is not None and watermark is not None and watermark != stored:
        write_watermark(state, watermark)
    _log.info("sync done: %s", report.summary())
    return report


def _sync_series(
    pacs: Pacs,
    destination: Pacs,
    client: Client,
    info: SeriesInfo,
    options: SyncOptions,
    model: tuple[str, int, str],
    classes: list[ClassCode],
    params: PreprocessParams,
) -> SeriesOutcome:
    name, version, tag = model
    outcome = SeriesOutcome(info.study_uid, info.series_uid, info.modality, info.watermark, "failed")
    stage = "retrieving"
    try:
        sources = sort_series(pacs.retrieve_series(info))
        stage = "checking for earlier outputs"
        sop_uids = [str(ds.SOPInstanceUID) for ds in sources]
        multi = classes if len(classes) > 1 and not options.fractional else None
        root = {"uid_root": options.uid_root} if options.uid_root else {}
        content = seg_content(options.fractional, multi, options.labelmap)
        seg_uids = derived_uids(sop_uids, model_tag=tag, content=content, **root)
        map_uids = derived_uids(sop_uids, model_tag=tag, content=f"pm:{options.measure}", **root)
        done: dict[str, Any] = {"seg_uid": seg_uids.sop_uid, "map_uid": map_uids.sop_uid, "slices": len(sources)}
        if all(destination.has_derived(u.series_uid, [u.sop_uid]) for u in (seg_uids, map_uids)):
            _log.info("series %s: outputs of %s already in the PACS, skipped", info.series_uid, tag)
            return replace(outcome, status="skipped", **done)
        stage = "decoding"
        slices = _decode(sources, params)
        stage = "registering in the pool"
        register_slices(client, slices, info.series_uid, info.study_uid, options.pool)
        stage = "predicting"
        predictions = list(
            client.predict_many(
                [s.pixels for s in slices],
                model=name,
                version=version,
                samples=options.samples,
                seed=options.seed,
                maps=("probability", "label_map", options.measure),
            )
        )
        stage = "building the SEG and Parametric Map"
        derived = _build(sources, predictions, options, tag, (seg_uids, map_uids), multi)
        stage = "storing"
        destination.store(derived)
    except (PacsError, CealError) as exc:
        return _failed(outcome, stage, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # one bad series must not stop the others
        # Only the type: a third-party message could quote DICOM values, patient data among them.
        return _failed(outcome, stage, f"unexpected {type(exc).__name__}: check the series' instances")
    _log.info("series %s: stored SEG and %s map over %d slice(s)", info.series_uid, options.measure, len(slices))
    return replace(outcome, status="stored", **done)


def _failed(outcome: SeriesOutcome, stage: str, reason: str) -> SeriesOutcome:
    error = f"while {stage}: {reason}"
    _log.error("series %s failed %s", outcome.series_uid, error)
    return replace(outcome, error=error)


def _decode(sources: Sequence[Dataset], params: PreprocessParams) -> list[DecodedSlice]:
    """One grey-scale or colour slice per source frame, in the sources' (and then the frames') order."""
    slices: list[DecodedSlice] = []
    for ds in sources:
        slices.extend(decode_dataset(ds, first_index=len(slices), params=params))
    return slices


def _foreground(probability: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """(H, W) sigmoid output, or 1 - background of a (C, H, W) softmax, as float32 in [0, 1]."""
    p = np.asarray(probability, dtype=np.float32)
    out = p if p.ndim == 2 else 1.0 - p[0]
    return np.clip(out, 0.0, 1.0)


def _build(
    sources: Sequence[Dataset],
    predictions: Sequence[Prediction],
    options: SyncOptions,
    tag: str,
    expected: tuple[DerivedUids, DerivedUids],
    classes: list[ClassCode] | None = None,
) -> list[Dataset]:
    """SEG and Parametric Map over `sources` from one prediction per source; checks the UIDs we looked for."""
    frames = sum(int(ds.get("NumberOfFrames") or 1) for ds in sources)
    if len(predictions) != frames:
        raise DicomBuildError(f"{len(predictions)} predictions for {frames} slices: run the sync again")
    if any(p.label_map is None or p.probability is None or getattr(p, options.measure) is None for p in predictions):
        raise DicomBuildError(f"the server left out a map asked for (label_map, probability, {options.measure})")
    labels = np.stack([np.asarray(p.label_map) for p in predictions])  # (N, H, W) class indices
    masks = labels.astype(np.uint8) if classes else (labels != 0).astype(np.uint8)
    values = np.stack([np.asarray(getattr(p, options.measure), dtype=np.float32) for p in predictions])  # (N, H, W)
    probabilities = (
        np.stack([_foreground(np.asarray(p.probability)) for p in predictions]) if options.fractional else None
    )  # (N, H, W) or None
    common: dict[str, Any] = {"content_qualification": options.content_qualification}
    if options.uid_root:
        common["uid_root"] = options.uid_root
    seg = build_segmentation(
        sources,
        masks,
        probabilities=probabilities,
        series_number=SEG_SERIES_NUMBER,
        algorithm_version=tag,
        classes=classes,
        labelmap=options.labelmap and bool(classes),
        **common,
    )
    pmap = build_uncertainty_map(
        sources,
        values,
        measure_name=options.measure,
        series_number=MAP_SERIES_NUMBER,
        algorithm_version=tag,
        **common,
    )
    if (seg.SOPInstanceUID, pmap.SOPInstanceUID) != (expected[0].sop_uid, expected[1].sop_uid):
        raise DicomBuildError("derived UIDs differ from those checked in the PACS: ceal.pacs versions disagree")
    return [seg, pmap]
