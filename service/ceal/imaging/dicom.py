"""A DICOM instance → float32 frames in [0, 1]: the DICOM half of the preprocessing contract (numpy + pydicom).

Grey-scale (PS3.3 C.11): stored values → Modality LUT (Modality LUT Sequence via pydicom, else Rescale
Slope / Intercept, per frame for enhanced multi-frame objects) → VOI → [0, 1]:
- the file's VOI LUT Sequence (pydicom's `apply_voi`, divided by the LUT's largest output), or its Window
  Center / Width (per frame from the Frame VOI LUT functional group) with its VOI LUT Function — LINEAR,
  LINEAR_EXACT or SIGMOID — as pydicom's `apply_windowing` computes it, mapped onto [0, 1];
- without one (or with `dicom_use_file_voi` off): CT gets `ct_window` (HU), other modalities the
  `percentiles` of the instance's values.
MONOCHROME1 is inverted (bright always means high). Colour (RGB; YBR as decoded to RGB by pydicom) is divided
by 2^BitsStored - 1. The result then passes `to_model_input` unchanged (floats in [0, 1] are kept as they are).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ceal.imaging.contract import PreprocessParams

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = [
    "COLOUR",
    "GREY",
    "DicomPixelError",
    "dicom_frames",
    "modality_values",
    "percentile_window",
    "stored_frames",
    "window",
]

COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
GREY = ("MONOCHROME1", "MONOCHROME2")


class DicomPixelError(ValueError):
    """The instance's pixels or intensity attributes cannot be used; the message says what to change."""


def window(
    values: npt.NDArray[np.floating], center: float, width: float, function: str = "LINEAR"
) -> npt.NDArray[np.float32]:
    """VOI window (PS3.3 C.11.2.1.2) onto [0, 1]; `values` any shape, same shape out.

    LINEAR needs width ≥ 1, LINEAR_EXACT and SIGMOID width > 0; otherwise `DicomPixelError`.
    """
    x = np.asarray(values, dtype=np.float64)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        if not width > 0:
            raise DicomPixelError(f"window width {width} must be positive for SIGMOID: fix Window Width")
        with np.errstate(over="ignore"):
            return (1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))).astype(np.float32)
    if function == "LINEAR_EXACT":
        if not width > 0:
            raise DicomPixelError(f"window width {width} must be positive for LINEAR_EXACT: fix Window Width")
        return np.clip((x - center) / width + 0.5, 0.0, 1.0).astype(np.float32)
    if function != "LINEAR":
        raise DicomPixelError(f"VOI LUT Function {function!r} is not LINEAR, LINEAR_EXACT or SIGMOID")
    if not width >= 1.0:
        raise DicomPixelError(f"window width {width} is below 1: fix Window Width or omit it")
    if width == 1.0:
        return (x > center - 0.5).astype(np.float32)
    return np.clip((x - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0).astype(np.float32)


def percentile_window(
    values: npt.NDArray[np.floating], low: float = 1.0, high: float = 99.0
) -> npt.NDArray[np.float32]:
    """The `low`–`high` percentile range of `values` onto [0, 1] (clipped); same shape out.

    A constant input maps to zeros; if the percentiles coincide, the full min–max range is used instead.
    """
    x = np.asarray(values, dtype=np.float64)
    lo, hi = (float(v) for v in np.percentile(x, [low, high]))
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.float32)
    with np.errstate(over="ignore"):  # a tiny window (even subnormal) sends far values to ±inf: clipped
        scaled = (x - lo) / (hi - lo)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _per_frame(ds: Dataset, n_frames: int, group: str, keyword: str) -> list[Any]:
    """A functional-group attribute for each frame: top level, then shared, then per-frame groups."""
    top = ds.get(keyword)
    if top is not None and top != "":
        return [top] * n_frames
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and group in shared[0] and keyword in shared[0][group].value[0]:
        return [shared[0][group].value[0].get(keyword)] * n_frames
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and len(per_frame) == n_frames:
        found: list[Any] = []
        for item in per_frame:
            seq = item.get(group)
            found.append(seq[0].get(keyword) if seq else None)
        return found
    return [None] * n_frames


def _first(value: Any) -> float:
    """First value of a possibly multi-valued DS/IS element."""
    if not isinstance(value, str | bytes) and hasattr(value, "__getitem__"):
        value = value[0]
    return float(value)


def stored_frames(ds: Dataset) -> npt.NDArray[Any]:
    """Pixel data as (F, H, W) or (F, H, W, 3), whatever the number of frames."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DicomPixelError(
            f"instance of SOP class {ds.get('SOPClassUID', '?')} has no pixel data: "
            "decode only image series (skip SEG, SR, Parametric Map and other derived series)"
        )
    try:
        pixels = np.asarray(ds.pixel_array)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError) as cause:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "?")
        raise DicomPixelError(
            f"cannot decode pixel data in transfer syntax {syntax}: ask the PACS for Explicit VR Little "
            "Endian or install a pydicom pixel-data plugin for it (e.g. pylibjpeg)"
        ) from cause
    n_frames = int(ds.get("NumberOfFrames") or 1)
    colour = int(ds.get("SamplesPerPixel") or 1) == 3
    expected_ndim = 3 + int(colour)
    if pixels.ndim == expected_ndim - 1:
        pixels = pixels[np.newaxis]
    if pixels.ndim != expected_ndim or pixels.shape[0] != n_frames:
        raise DicomPixelError(
            f"pixel data of shape {pixels.shape} does not match {n_frames} frame(s) of "
            f"{'colour' if colour else 'grey-scale'} image: check Number of Frames and Samples per Pixel"
        )
    return pixels


def _rescaled(ds: Dataset, stored: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """(F, H, W) stored values → (F, H, W) modality values (Modality LUT, or Rescale Slope / Intercept)."""
    n_frames = stored.shape[0]
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels.processing import apply_modality_lut

        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    slopes = _per_frame(ds, n_frames, "PixelValueTransformationSequence", "RescaleSlope")
    intercepts = _per_frame(ds, n_frames, "PixelValueTransformationSequence", "RescaleIntercept")
    slope = np.array([1.0 if s in (None, "") else _first(s) for s in slopes])  # (F,)
    intercept = np.array([0.0 if b in (None, "") else _first(b) for b in intercepts])  # (F,)
    with np.errstate(all="ignore"):  # a damaged slope (inf, nan) is refused just below, not warned about
        values: npt.NDArray[np.float64] = stored.astype(np.float64) * slope[:, None, None] + intercept[:, None, None]
    if not np.isfinite(values).all():
        raise DicomPixelError("Rescale Slope / Intercept give non-finite values: fix them in the file")
    return values


def modality_values(ds: Dataset) -> npt.NDArray[np.float64]:
    """A grey-scale instance's pixels in modality units (e.g. HU for CT), (F, H, W) float64, unwindowed."""
    return _rescaled(ds, stored_frames(ds))


def _voi_lut(ds: Dataset, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """The first VOI LUT of the VOI LUT Sequence (pydicom's `apply_voi`), divided by its largest output."""
    from pydicom.pixels.processing import apply_voi

    item = ds.VOILUTSequence[0]
    bits = int(item.LUTDescriptor[2])
    out = np.asarray(apply_voi(values, ds, index=0), dtype=np.float64)
    return np.clip(out / float(2**bits - 1), 0.0, 1.0).astype(np.float32)


def _grey(ds: Dataset, stored: npt.NDArray[Any], params: PreprocessParams) -> tuple[npt.NDArray[np.float32], str]:
    """(F, H, W) stored values → modality values → [0, 1] through the VOI; also says which VOI was used."""
    n_frames = stored.shape[0]
    values = _rescaled(ds, stored)  # (F, H, W)
    centers = _per_frame(ds, n_frames, "FrameVOILUTSequence", "WindowCenter")
    widths = _per_frame(ds, n_frames, "FrameVOILUTSequence", "WindowWidth")
    functions = _per_frame(ds, n_frames, "FrameVOILUTSequence", "VOILUTFunction")
    modality = str(ds.get("Modality", "")).upper()
    if params.dicom_use_file_voi and "VOILUTSequence" in ds:
        out, source = _voi_lut(ds, values), "VOI LUT Sequence"
    elif params.dicom_use_file_voi and all(
        c not in (None, "") and w not in (None, "") for c, w in zip(centers, widths, strict=True)
    ):  # a window that is present but unusable (width 0) is refused by `window`, not silently replaced
        frames = [
            window(values[i], _first(centers[i]), _first(widths[i]), str(functions[i] or "LINEAR"))
            for i in range(n_frames)
        ]
        out, source = np.stack(frames), "file window"
    elif modality == "CT":
        out, source = window(values, *params.ct_window), f"CT default {params.ct_window[0]:g}/{params.ct_window[1]:g}"
    else:
        out, source = percentile_window(values, *params.percentiles), "percentiles"
    if params.invert_monochrome1 and ds.get("PhotometricInterpretation") == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32), source


def dicom_frames(ds: Dataset, params: PreprocessParams) -> tuple[npt.NDArray[np.float32], str]:
    """One instance → (F, H, W) grey or (F, H, W, 3) colour float32 in [0, 1], and which VOI was applied.

    Raises `DicomPixelError` for instances without pixel data, an unsupported Photometric Interpretation or
    transfer syntax, or unusable rescale / window attributes.
    """
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in GREY + COLOUR:
        raise DicomPixelError(
            f"photometric interpretation {photometric or '(missing)'} is not supported: "
            f"convert to one of {', '.join((*GREY, 'RGB'))}"
        )
    stored = stored_frames(ds)
    if photometric in COLOUR:
        bits = int(ds.get("BitsStored") or 8)
        return np.clip(stored.astype(np.float64) / float(2**bits - 1), 0.0, 1.0).astype(np.float32), "colour"
    try:
        return _grey(ds, stored, params)
    except DicomPixelError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as cause:  # damaged LUT attributes
        raise DicomPixelError(
            f"DICOM rescale or window attributes are not usable ({type(cause).__name__}): check Rescale "
            "Slope / Intercept, Window Center / Width and the VOI LUT Sequence"
        ) from cause
