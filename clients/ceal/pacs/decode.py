"""DICOM instances → float32 slices in [0, 1] for the model, and series ordering.

Grey-scale pipeline (DICOM PS3.3 C.11): stored values → Modality LUT (Rescale Slope / Intercept, e.g. CT
Hounsfield units) → VOI window → [0, 1]. The window is the file's first Window Center / Width; without one,
CT gets the soft-tissue window 40 / 400 HU and every other modality the 1st–99th percentile of the
instance's values. MONOCHROME1 (bright = low values) is inverted so that bright always means high. Colour
(RGB, YBR decoded to RGB by pydicom) is kept as (H, W, 3), scaled by the stored bit depth. A multi-frame
instance gives one slice per frame, in frame order.

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
from pydicom.multival import MultiValue

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

CT_DEFAULT_WINDOW = (40.0, 400.0)
"""(center, width) in HU: the soft-tissue window used for CT when the file names none."""

_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
_GREY = ("MONOCHROME1", "MONOCHROME2")


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
    if not width >= 1.0:
        raise DicomDecodeError(f"window width {width} is below 1: fix Window Width or omit it")
    x = np.asarray(values, dtype=np.float64)
    if width == 1.0:
        return (x > center - 0.5).astype(np.float32)
    out = (x - (center - 0.5)) / (width - 1.0) + 0.5
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def percentile_window(
    values: npt.NDArray[np.floating], low: float = 1.0, high: float = 99.0
) -> npt.NDArray[np.float32]:
    """Map the `low`–`high` percentile range of `values` linearly onto [0, 1] (clipped); same shape out.

    A constant input maps to zeros; if the percentiles coincide, the full min–max range is used instead.
    """
    x = np.asarray(values, dtype=np.float64)
    lo, hi = (float(v) for v in np.percentile(x, [low, high]))
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.float32)
    with np.errstate(over="ignore"):  # a tiny window (even subnormal) sends far values to ±inf: clipped to 0 or 1
        scaled = (x - lo) / (hi - lo)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


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


def _per_frame(ds: Dataset, n_frames: int, group: str, keyword: str) -> list[object | None]:
    """A functional-group attribute for each frame: top level, then shared, then per-frame groups."""
    top = ds.get(keyword)
    if top is not None and top != "":
        return [top] * n_frames
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and group in shared[0] and keyword in shared[0][group].value[0]:
        return [shared[0][group].value[0].get(keyword)] * n_frames
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and len(per_frame) == n_frames:
        found: list[object | None] = []
        for item in per_frame:
            seq = item.get(group)
            found.append(seq[0].get(keyword) if seq else None)
        return found
    return [None] * n_frames


def _first(value: object) -> float:
    """First value of a possibly multi-valued DS/IS element."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0]
    return float(value)  # type: ignore[arg-type]


def _stored_frames(ds: Dataset) -> npt.NDArray[np.generic]:
    """Pixel data as (F, H, W) or (F, H, W, 3), whatever the number of frames."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DicomDecodeError(
            f"instance of SOP class {ds.get('SOPClassUID', '?')} has no pixel data: "
            "decode only image series (skip SEG, SR, Parametric Map and other derived series)"
        )
    try:
        pixels = np.asarray(ds.pixel_array)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError) as cause:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "?")
        raise DicomDecodeError(
            f"cannot decode pixel data in transfer syntax {syntax}: ask the PACS for Explicit VR Little "
            "Endian or install a pydicom pixel-data plugin for it (e.g. pylibjpeg)"
        ) from cause
    n_frames = int(ds.get("NumberOfFrames") or 1)
    colour = int(ds.get("SamplesPerPixel") or 1) == 3
    expected_ndim = 3 + int(colour)
    if pixels.ndim == expected_ndim - 1:
        pixels = pixels[np.newaxis]
    if pixels.ndim != expected_ndim or pixels.shape[0] != n_frames:
        raise DicomDecodeError(
            f"pixel data of shape {pixels.shape} does not match {n_frames} frame(s) of "
            f"{'colour' if colour else 'grey-scale'} image: check Number of Frames and Samples per Pixel"
        )
    return pixels


def _rescaled(ds: Dataset, stored: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """(F, H, W) stored values → (F, H, W) modality values (Modality LUT, or Rescale Slope / Intercept)."""
    n_frames = stored.shape[0]
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels.processing import apply_modality_lut

        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    slopes = _per_frame(ds, n_frames, "PixelValueTransformationSequence", "RescaleSlope")
    intercepts = _per_frame(ds, n_frames, "PixelValueTransformationSequence", "RescaleIntercept")
    slope = np.array([1.0 if s in (None, "") else _first(s) for s in slopes])  # (F,)
    intercept = np.array([0.0 if b in (None, "") else _first(b) for b in intercepts])  # (F,)
    values: npt.NDArray[np.float64] = stored.astype(np.float64) * slope[:, None, None] + intercept[:, None, None]
    return values


def modality_values(ds: Dataset) -> npt.NDArray[np.float64]:
    """A grey-scale instance's pixels in modality units (e.g. HU for CT), (F, H, W) float64, unwindowed."""
    return _rescaled(ds, _stored_frames(ds))


def _grey_frames(ds: Dataset, stored: npt.NDArray[np.generic]) -> tuple[npt.NDArray[np.float32], str]:
    """(F, H, W) stored values → modality values → windowed [0, 1]; also says where the window came from."""
    n_frames = stored.shape[0]
    values = _rescaled(ds, stored)  # (F, H, W)
    centers = _per_frame(ds, n_frames, "FrameVOILUTSequence", "WindowCenter")
    widths = _per_frame(ds, n_frames, "FrameVOILUTSequence", "WindowWidth")
    if all(c is not None and w is not None and _first(w) >= 1.0 for c, w in zip(centers, widths, strict=True)):
        frames = [window_linear(values[i], _first(centers[i]), _first(widths[i])) for i in range(n_frames)]
        out, source = np.stack(frames), "file"
    elif str(ds.get("Modality", "")).upper() == "CT":
        out, source = window_linear(values, *CT_DEFAULT_WINDOW), "CT default 40/400"
    else:
        out, source = percentile_window(values), "1st-99th percentile"
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32), source


def decode_dataset(ds: Dataset, *, first_index: int = 0) -> list[DecodedSlice]:
    """Decode one instance into one `DecodedSlice` per frame (see the module doc for the pipeline).

    `first_index` is added to the frame index to give `slice_index`. Raises `DicomDecodeError` for
    instances without pixel data or with an unsupported Photometric Interpretation / transfer syntax.
    """
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in _GREY + _COLOUR:
        raise DicomDecodeError(
            f"photometric interpretation {photometric or '(missing)'} is not supported: "
            f"convert to one of {', '.join((*_GREY, 'RGB'))}"
        )
    stored = _stored_frames(ds)
    if photometric in _COLOUR:
        bits = int(ds.get("BitsStored") or 8)
        pixels = np.clip(stored.astype(np.float64) / float(2**bits - 1), 0.0, 1.0).astype(np.float32)
        source = "colour, scaled by bit depth"
    else:
        pixels, source = _grey_frames(ds, stored)
    study_uid, series_uid, sop_uid = (
        str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    )
    _log.debug(
        "decoded %d frame(s) of %s %s (window: %s)",
        pixels.shape[0],
        ds.get("Modality", "?"),
        photometric,
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


def decode_series(datasets: Sequence[Dataset]) -> list[DecodedSlice]:
    """`sort_series`, then `decode_dataset` on each; `slice_index` counts slices over the whole series."""
    slices: list[DecodedSlice] = []
    for ds in sort_series(datasets):
        slices.extend(decode_dataset(ds, first_index=len(slices)))
    return slices
