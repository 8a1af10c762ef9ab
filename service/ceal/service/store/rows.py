"""Store records <-> SQL rows and parameters, for the column orders in `queries.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ceal.service.store.base import DicomRef, ImageRecord, Label, Lease, NewImage, PackedMask, ScoreRow
from ceal.service.store.codec import decode_array, decode_known, encode_array, image_id_of
from ceal.service.store.errors import StoreDamaged
from ceal.service.store.validation import check_image_name, check_image_pixels, check_source

__all__ = [
    "image_record",
    "label",
    "lease",
    "mask_params",
    "new_image_params",
    "packed_mask",
    "score_numbers",
    "score_row",
]

Row = Sequence[Any]


def new_image_params(pool: str, image: NewImage) -> tuple[Any, ...]:
    """Parameters of queries.INSERT_IMAGE but the last (created_at). The image id is the first; hashing and
    compressing here lets callers do it before they take the write lock. Fills in the default keys."""
    pixels = check_image_pixels(image.pixels)
    image_id = image_id_of(pixels)
    dicom = image.dicom
    series = image.series_key or (dicom.series_uid if dicom and dicom.series_uid else image_id)
    study = image.study_key or (dicom.study_uid if dicom and dicom.study_uid else series)
    height, width, *rest = (int(n) for n in pixels.shape)
    channels = rest[0] if rest else 1
    dicom_cols: tuple[Any, ...] = (None, None, None, None)
    if dicom is not None:
        dicom_cols = (dicom.study_uid, dicom.series_uid, dicom.sop_uid, dicom.frame)
    dtype = pixels.dtype.newbyteorder("<").str if pixels.dtype.byteorder == ">" else pixels.dtype.str
    head = (image_id, pool, height, width, channels, series, study, int(image.slice_index))
    return (*head, *dicom_cols, dtype, encode_array(pixels), check_image_name(image.name))


def score_numbers(row: ScoreRow) -> tuple[Any, ...]:
    """(image_id, model_name, model_version, entropy, ..., foreground_fraction) as plain Python numbers
    (sqlite3 cannot bind numpy scalars)."""
    return (
        row.image_id,
        row.model_name,
        int(row.model_version),
        float(row.entropy),
        float(row.mutual_information),
        float(row.variance),
        float(row.confidence),
        float(row.boundary_length),
        int(row.components),
        float(row.foreground_fraction),
    )


def mask_params(row: ScoreRow, mask: PackedMask) -> tuple[Any, ...]:
    """(image_id, model_name, model_version, height, width, mask blob) of queries.UPSERT_SCORE_MASK: `row`'s
    mask (checked by `check_score_row`)."""
    height, width = mask.shape
    return (row.image_id, row.model_name, int(row.model_version), height, width, encode_array(mask.bits))


def packed_mask(row: Row) -> PackedMask:
    """(height, width, mask blob) of queries.SCORE_MASKS."""
    height, width, blob = int(row[0]), int(row[1]), bytes(row[2])
    bits = decode_known(blob, "|u1", (height, -(-width // 8)))
    if bits.dtype != np.uint8 or bits.shape != (height, -(-width // 8)):
        raise StoreDamaged(f"a stored {height}×{width} mask has packed bits of shape {bits.shape}: restore a backup")
    return PackedMask(width, bits)


def image_record(row: Row) -> ImageRecord:
    """Row of queries.IMAGE_COLUMNS."""
    (image_id, pool, height, width, channels, series_key, study_key, slice_index) = row[:8]
    study_uid, series_uid, sop_uid, frame, created_at, dtype, name = row[8:]
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
        name=str(name or ""),
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
