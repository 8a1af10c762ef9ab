"""`labels`: a radiologist's DICOM SEG in the PACS → a human label in the ceal pool.

For each SEG series found (since the watermark, as `sync` finds image series):

    retrieve the SEG instances → skip ceal's own (Manufacturer "ceal", or UIDs under ceal's root)
    → read each with highdicom (`segread`) → its referenced image series: retrieve, sort, decode (the
    preprocessing contract, as `sync` does) and register (idempotent: the same ids the sync registered)
    → segments → the model's classes by their coded type (or a mapping file, `ceal.pacs.classes`)
    → per source instance, a class-index mask from the frames that reference it (none: an empty mask)
    → SubmitLabel as a human label, annotator = Content Creator's Name, idempotency key from the SEG's
      SOP Instance UID and the image: a rerun stores nothing twice; a newer SEG of the same image (another
      SOP Instance UID) becomes the label's next version.

SEGs are taken oldest first (Content Date / Time), so the newest correction ends up as the latest version.
A SEG whose referenced series the PACS does not hold, or whose segments match no class, is reported and
skipped; the others go on. Messages carry UIDs, never patient data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import Dataset

from ceal.client import CealError, Client
from ceal.imaging import PreprocessParams
from ceal.pacs.classes import ClassCode, class_of_segment
from ceal.pacs.decode import DecodedSlice, decode_dataset, sort_series
from ceal.pacs.dicom_out import MANUFACTURER
from ceal.pacs.errors import PacsError
from ceal.pacs.protocol import Pacs, SeriesInfo
from ceal.pacs.register import register_slices

__all__ = ["LabelOutcome", "LabelsReport", "import_labels", "is_ceal_object"]

_log = logging.getLogger(__name__)

Status = Literal["stored", "unchanged", "ours", "skipped", "failed"]
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")  # Segmentation, Label Map


@dataclass(frozen=True)
class LabelOutcome:
    """One SEG instance: `stored` (new labels or versions), `unchanged` (all stored before), `ours` (ceal's own
    output), `skipped` (unknown series, no matching class) or `failed`, with the reason in `message`."""

    seg_uid: str
    series_uid: str  # the referenced image series ("" when the SEG names none)
    status: Status
    annotator: str = ""
    labels: int = 0  # labels newly stored by this run (new images or new versions)
    message: str = ""


@dataclass(frozen=True)
class LabelsReport:
    outcomes: tuple[LabelOutcome, ...]
    failures: tuple[LabelOutcome, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failures", tuple(o for o in self.outcomes if o.status in ("failed", "skipped")))

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def labels(self) -> int:
        return sum(o.labels for o in self.outcomes)

    def summary(self) -> str:
        return (
            f"{self.labels} label(s) stored from {self.count('stored')} SEG(s); {self.count('unchanged')} already "
            f"in the pool, {self.count('ours')} of ceal's own, {self.count('skipped')} skipped, "
            f"{self.count('failed')} failed"
        )


def is_ceal_object(ds: Dataset, uid_root: str | None = None) -> bool:
    """A SEG ceal wrote: its Manufacturer, or (with the root ceal writes under) its SOP Instance UID."""
    if str(ds.get("Manufacturer", "")) == MANUFACTURER:
        return True
    return bool(uid_root) and str(ds.get("SOPInstanceUID", "")).startswith(str(uid_root))


def _referenced_series(ds: Dataset) -> str:
    refs = ds.get("ReferencedSeriesSequence") or []
    uids = {str(item.SeriesInstanceUID) for item in refs if "SeriesInstanceUID" in item}
    if len(uids) == 1:
        return uids.pop()
    return ""


def _annotator(ds: Dataset) -> str:
    name = str(ds.get("ContentCreatorName", "") or "").strip()
    if name:
        return name
    return f"DICOM SEG from {ds.get('Manufacturer', '') or 'an unknown manufacturer'!s}"[:64]


def _order(ds: Dataset) -> tuple[str, str, int]:
    return (str(ds.get("ContentDate", "")), str(ds.get("ContentTime", "")), int(ds.get("InstanceNumber") or 0))


@dataclass
class _Pool:
    """What the pool already holds: label ids per image (to tell new labels from replays)."""

    client: Client
    pool: str
    known: set[str] = field(default_factory=set)

    def load(self) -> None:
        for record in self.client.export_labels(pool=self.pool, sources=("human",), include_images=False):
            self.known.add(record.label_id)


def _class_map(seg: hd.seg.Segmentation, classes: Sequence[ClassCode]) -> tuple[dict[int, int], list[str]]:
    """{segment number: class index} for the segments that match a class, and the labels of those that don't."""
    mapping: dict[int, int] = {}
    unmatched: list[str] = []
    for number in seg.segment_numbers:
        description = seg.get_segment_description(number)
        index = class_of_segment(description.segment_label, description.segmented_property_type, classes)
        if index is None:
            unmatched.append(f"{number} ({description.segment_label})")
        else:
            mapping[number] = index
    return mapping, unmatched


def _masks(
    seg: hd.seg.Segmentation, sources: Sequence[Dataset], mapping: dict[int, int]
) -> dict[tuple[str, int], npt.NDArray[np.uint8]]:
    """{(source SOP Instance UID, frame number): (Rows, Columns) class indices} for each source frame the SEG
    references (a frame it omits is empty; frame 1 for single-frame sources); later segments win on overlap."""
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    numbers = sorted(mapping)
    options: dict[str, Any] = {
        "segment_numbers": numbers,
        "assert_missing_frames_are_empty": True,
        "rescale_fractional": False,
    }
    planes: list[tuple[tuple[str, int], npt.NDArray[Any]]] = []
    single = [str(ds.SOPInstanceUID) for ds in sources if int(ds.get("NumberOfFrames") or 1) == 1]
    single = [uid for uid in single if uid in referenced]
    if single:  # (n, Rows, Columns, segments)
        pixels = seg.get_pixels_by_source_instance(single, **options)
        planes.extend(((uid, 1), pixels[i]) for i, uid in enumerate(single))
    for ds in sources:
        frames = int(ds.get("NumberOfFrames") or 1)
        uid = str(ds.SOPInstanceUID)
        if frames > 1 and uid in referenced:  # an enhanced multi-frame source: by frame number
            pixels = seg.get_pixels_by_source_frame(uid, list(range(1, frames + 1)), **options)
            planes.extend(((uid, f + 1), pixels[f]) for f in range(frames))
    fractional = seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
    threshold = int(seg.MaximumFractionalValue) // 2 if fractional else 0  # FRACTIONAL: more than half is inside
    out: dict[tuple[str, int], npt.NDArray[np.uint8]] = {}
    for key, plane in planes:
        mask = np.zeros(plane.shape[:2], np.uint8)
        for column, number in enumerate(numbers):
            mask[plane[:, :, column] > threshold] = mapping[number]
        out[key] = mask
    return out


def _import_one(
    pacs: Pacs,
    client: Client,
    ds: Dataset,
    classes: Sequence[ClassCode],
    state: _Pool,
    params: PreprocessParams,
    uid_root: str | None,
) -> LabelOutcome:
    seg_uid, series_uid = str(ds.get("SOPInstanceUID", "")), _referenced_series(ds)
    outcome = LabelOutcome(seg_uid, series_uid, "failed", annotator=_annotator(ds))
    if is_ceal_object(ds, uid_root):
        return LabelOutcome(seg_uid, series_uid, "ours")
    if not series_uid:
        return _report(outcome, "skipped", "the SEG references no single image series")
    stage = "reading the SEG"
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
        mapping, unmatched = _class_map(seg, classes)
        if not mapping:
            return _report(
                outcome, "skipped", f"no segment matches a model class ({', '.join(unmatched)}): pass --class-map"
            )
        stage = "retrieving the referenced series"
        info = SeriesInfo(str(ds.StudyInstanceUID), series_uid, "", "")
        try:
            sources = sort_series(pacs.retrieve_series(info))
        except PacsError as exc:
            return _report(outcome, "skipped", f"the referenced series is unknown to the PACS ({exc})")
        stage = "decoding the referenced series"
        slices: list[DecodedSlice] = []
        for source in sources:
            slices.extend(decode_dataset(source, first_index=len(slices), params=params))
        stage = "registering the referenced series"
        ids = register_slices(client, slices, series_uid, str(ds.StudyInstanceUID), state.pool)
        stage = "reading the masks"
        masks = _masks(seg, sources, mapping)
        stage = "submitting the labels"
        new = 0
        for s, image_id in zip(slices, ids, strict=True):
            mask = masks.get((s.ref.sop_uid, s.ref.frame_number))
            if mask is None:
                continue  # a source the SEG does not cover: no label, not an empty one
            label_id, _version = client.submit_label(
                image_id,
                mask,
                annotator=outcome.annotator,
                pool=state.pool,
                idempotency_key=f"dicom-seg:{seg_uid}:{image_id}",
            )
            if label_id not in state.known:
                state.known.add(label_id)
                new += 1
    except (PacsError, CealError) as exc:
        return _report(outcome, "failed", f"while {stage}: {type(exc).__name__}: {exc}")
    except Exception as exc:  # one bad SEG must not stop the others; only the type (no DICOM values)
        return _report(outcome, "failed", f"while {stage}: unexpected {type(exc).__name__}: check the SEG")
    status: Status = "stored" if new else "unchanged"
    _log.info("SEG %s: %d new label(s) on series %s", seg_uid, new, series_uid)
    return LabelOutcome(seg_uid, series_uid, status, annotator=outcome.annotator, labels=new)


def _report(outcome: LabelOutcome, status: Status, message: str) -> LabelOutcome:
    _log.warning("SEG %s (series %s) %s: %s", outcome.seg_uid, outcome.series_uid or "?", status, message)
    return LabelOutcome(outcome.seg_uid, outcome.series_uid, status, outcome.annotator, 0, message)


def import_labels(
    pacs: Pacs,
    client: Client,
    classes: Sequence[ClassCode],
    *,
    pool: str = "",
    since: str | None = None,
    params: PreprocessParams | None = None,
    uid_root: str | None = None,
    series: Sequence[SeriesInfo] | None = None,
) -> LabelsReport:
    """Import every SEG found since `since` (or among `series`, when a sync already listed them) as human
    labels; see the module doc. Raises `PacsError` / `CealError` only when the run cannot start."""
    found = list(series) if series is not None else pacs.find_series(since)
    seg_series = sorted((i for i in found if i.modality.upper() == "SEG"), key=lambda i: (i.watermark, i.series_uid))
    state = _Pool(client, pool)
    state.load()
    instances: list[Dataset] = []
    for info in seg_series:
        instances.extend(d for d in pacs.retrieve_series(info) if str(d.get("SOPClassUID", "")) in SEG_SOP_CLASSES)
    outcomes = [
        _import_one(pacs, client, ds, classes, state, params or PreprocessParams(), uid_root)
        for ds in sorted(instances, key=_order)
    ]
    report = LabelsReport(tuple(outcomes))
    _log.info("labels from the PACS: %s", report.summary())
    return report
