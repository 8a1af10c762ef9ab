"""SQL rows -> store records, for the column orders in `queries.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ceal.service.store.base import DicomRef, ImageRecord, Label, Lease, ScoreRow
from ceal.service.store.codec import decode_array
from ceal.service.store.validation import check_source

__all__ = ["image_record", "label", "lease", "score_row"]

Row = Sequence[Any]


def image_record(row: Row) -> ImageRecord:
    """Row of queries.IMAGE_COLUMNS."""
    (image_id, pool, height, width, channels, series_key, study_key, slice_index) = row[:8]
    study_uid, series_uid, sop_uid, frame, created_at, dtype = row[8:]
    dicom = None
    if sop_uid is not None:
        dicom = DicomRef(str(study_uid), str(series_uid), str(sop_uid), None if frame is None else int(frame))
    return ImageRecord(
        image_id=str(image_id),
        pool=str(pool),
        height=int(height),
        width=int(width),
        channels=int(channels),
        series_key=str(series_key),
        study_key=str(study_key),
        slice_index=int(slice_index),
        dicom=dicom,
        created_at=float(created_at),
        dtype=str(dtype),
    )


def score_row(row: Row) -> ScoreRow:
    """Row of queries.SCORE_COLUMNS."""
    descriptor = row[10]
    return ScoreRow(
        image_id=str(row[0]),
        model_name=str(row[1]),
        model_version=int(row[2]),
        entropy=float(row[3]),
        mutual_information=float(row[4]),
        variance=float(row[5]),
        confidence=float(row[6]),
        boundary_length=float(row[7]),
        components=int(row[8]),
        foreground_fraction=float(row[9]),
        descriptor=None if descriptor is None else decode_array(bytes(descriptor)),
        scored_at=float(row[11]),
    )


def label(row: Row) -> Label:
    """Row of queries.LABEL_COLUMNS (extra trailing columns are ignored)."""
    return Label(
        label_id=str(row[0]),
        image_id=str(row[1]),
        version=int(row[2]),
        source=check_source(str(row[3])),
        annotator=str(row[4]),
        mask=decode_array(bytes(row[5])),
        seconds_spent=float(row[6]),
        created_at=float(row[7]),
        model_version=None if row[8] is None else int(row[8]),
    )


def lease(row: Row) -> Lease:
    """Row of (image_id, annotator, expires_at)."""
    return Lease(image_id=str(row[0]), annotator=str(row[1]), expires_at=float(row[2]))
