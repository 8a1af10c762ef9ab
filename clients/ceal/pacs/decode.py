"""DICOM instances → float32 slices in [0, 1] for the model, and series ordering.

The intensity pipeline is the preprocessing contract's (`ceal.imaging.dicom`, shared with the server's codec
and the trainer's loader): stored values → Modality LUT → the file's VOI (window with its VOI LUT Function, or
VOI LUT Sequence) → [0, 1]; without one, CT gets the soft-tissue window 40 / 400 HU and every other modality
the 1st–99th percentile of the instance's values (both set by the model's `PreprocessParams`). MONOCHROME1 is
inverted so that bright always means high. Colour is kept as (H, W, 3), scaled by the stored bit depth. A
multi-frame instance gives one slice per frame, in frame order.

The numeric cores (`window_linear`, `percentile_window`, `positions_along_normal`) are pure functions of
arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom import Dataset

from ceal.imaging import PreprocessParams
from ceal.imaging.dicom import DicomPixelError, dicom_frames, percentile_window, window
from ceal.imaging.dicom import modality_values as contract_modality_values
from ceal.pacs.errors import DicomDecodeError

__all__ = [
    "CT_DEFAULT_WINDOW",
    "DecodedSlice",
    "SliceRef",
    "decode_dataset",
    "decode_series",
    "modality_values",
    "percentile_window",
    "positions_along_normal",
    "sort_series",
    "window_linear",
]

_log = logging.getLogger(__name__)

DEFAULT_PARAMS = PreprocessParams()
CT_DEFAULT_WINDOW = DEFAULT_PARAMS.ct_window
"""(center, width) in HU: the soft-tissue window used for CT when the file names none."""


@dataclass(frozen=True)
class SliceRef:
    """Which DICOM frame a slice came from; `frame_number` is 1-based (1 for single-frame instances)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    frame_number: int


@dataclass(frozen=True)
class DecodedSlice:
    """One image plane ready for the model.

    `pixels`: float32 in [0, 1], (H, W) for grey-scale or (H, W, 3) for colour. `slice_index`: 0-based
    position of the slice in what was decoded (the frame index for `decode_dataset`, the sorted position for
    `decode_series`).
    """

    pixels: npt.NDArray[np.float32]
    ref: SliceRef
    slice_index: int


def window_linear(values: npt.NDArray[np.floating], center: float, width: float) -> npt.NDArray[np.float32]:
    """DICOM's LINEAR VOI function (PS3.3 C.11.2.1.2.1) scaled to [0, 1]; `values` any shape, same shape out.

    Raises `DicomDecodeError` if `width` < 1 (the standard's lower bound).
    """
    try:
        return window(values, center, width, "LINEAR")
    except DicomPixelError as exc:
        raise DicomDecodeError(str(exc)) from exc


def positions_along_normal(
    positions: npt.NDArray[np.floating], orientation: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """Signed distance of each slice along the slice normal.

    positions: (N, 3) Image Position (Patient) in mm; orientation: (6,) Image Orientation (Patient), row then
    column direction cosines. Returns (N,) in mm; the normal is row × column.
    """
    o = np.asarray(orientation, dtype=np.float64).reshape(6)
    normal = np.cross(o[:3], o[3:])  # (3,)
    return np.asarray(positions, dtype=np.float64).reshape(-1, 3) @ normal  # (N,)


def _geometry(ds: Dataset) -> tuple[list[float], list[float]] | None:
    """(Image Position, Image Orientation) of the first frame, classic or enhanced IOD; None if absent."""
    ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    if ipp is None or iop is None:
        try:
            iop = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
            ipp = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient
        except (AttributeError, IndexError):
            return None
    if len(ipp) != 3 or len(iop) != 6:
        return None
    return [float(v) for v in ipp], [float(v) for v in iop]


def sort_series(datasets: Sequence[Dataset]) -> list[Dataset]:
    """The instances of one series in spatial order: ascending position along the slice normal.

    Falls back to Instance Number when any instance lacks Image Position / Orientation (ties keep input
    order). The normal is taken from the first instance; Instance Number breaks ties in position.
    """
    items = list(datasets)
    geometry = [_geometry(ds) for ds in items]

    def instance_number(ds: Dataset) -> float:
        value = ds.get("InstanceNumber")
        return float(value) if value not in (None, "") else float("inf")

    if items and all(g is not None for g in geometry):
        positions = np.array([g[0] for g in geometry if g is not None])  # (N, 3)
        first = geometry[0]
        assert first is not None
        along = positions_along_normal(positions, np.array(first[1]))  # (N,)
        order = sorted(range(len(items)), key=lambda i: (float(along[i]), instance_number(items[i])))
    else:
        order = sorted(range(len(items)), key=lambda i: instance_number(items[i]))
    return [items[i] for i in order]


def modality_values(ds: Dataset) -> npt.NDArray[np.float64]:
    """A grey-scale instance's pixels in modality units (e.g. HU for CT), (F, H, W) float64, unwindowed."""
    try:
        return contract_modality_values(ds)
    except DicomPixelError as exc:
        raise DicomDecodeError(str(exc)) from exc


def decode_dataset(
    ds: Dataset, *, first_index: int = 0, params: PreprocessParams = DEFAULT_PARAMS
) -> list[DecodedSlice]:
    """Decode one instance into one `DecodedSlice` per frame (see the module doc for the pipeline).

    `first_index` is added to the frame index to give `slice_index`; `params` is the model's preprocessing
    (its DICOM part: file VOI, CT window, percentiles, MONOCHROME1). Raises `DicomDecodeError` for
    instances without pixel data or with an unsupported Photometric Interpretation / transfer syntax.
    """
    try:
        pixels, source = dicom_frames(ds, params)
    except DicomPixelError as exc:
        raise DicomDecodeError(str(exc)) from exc
    study_uid, series_uid, sop_uid = (
        str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    )
    _log.debug(
        "decoded %d frame(s) of %s %s (window: %s)",
        pixels.shape[0],
        ds.get("Modality", "?"),
        ds.get("PhotometricInterpretation", "?"),
        source,
    )
    return [
        DecodedSlice(
            pixels=pixels[i],
            ref=SliceRef(study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid, frame_number=i + 1),
            slice_index=first_index + i,
        )
        for i in range(pixels.shape[0])
    ]


def decode_series(datasets: Sequence[Dataset], params: PreprocessParams = DEFAULT_PARAMS) -> list[DecodedSlice]:
    """`sort_series`, then `decode_dataset` on each; `slice_index` counts slices over the whole series."""
    slices: list[DecodedSlice] = []
    for ds in sort_series(datasets):
        slices.extend(decode_dataset(ds, first_index=len(slices), params=params))
    return slices
