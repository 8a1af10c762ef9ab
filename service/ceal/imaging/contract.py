"""Decoded pixels → model input: one pure function, its parameters one dataclass (`PreprocessParams`).

    pixels (H, W[, C]) ─ to_unit ─▶ float32 [0, 1] ─ to_channels ─▶ (H, W, C) ─ resize ─▶ (C, h, w)
                                                                            ─ (x - mean) / std ─▶ model input

Intensity policy by input kind (the decoded array's dtype):
- uint8: x / 255.
- uint16: "full" divides by `uint16_max` (65535 by default; 4095 for 12-bit data stored in 16-bit PNGs), so an
  8-bit image and the same content scaled to 16 bits (x · 257) give the same input; "minmax" stretches each
  image from its own min..max.
- other integers (int8/16/32, uint32): "minmax" per image, or "full" over the dtype's range.
- float: "clip" takes values as already in [0, 1] (a DICOM decoded by `ceal.imaging.dicom` arrives so);
  "minmax" stretches each image.
Channels: grey is repeated to 3 channels, RGB becomes luminance (ITU-R 601) for 1-channel models, alpha is
dropped. Resize: bilinear with PIL's antialiasing (a triangle filter widened by the downscale factor), written
in numpy so that the bridge, which installs without the service, computes the same numbers; "stretch" to the
input size, or "pad" (keep the aspect: fit into `content_box`, centre, pad with black).

The trainer exports these parameters into the model's metadata and the server reads them back, so a model is
served exactly as it was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONTRACT_VERSION",
    "PreprocessParams",
    "content_box",
    "fit_planes",
    "resize_planes",
    "to_channels",
    "to_model_input",
    "to_unit",
]

CONTRACT_VERSION = 1
IntegerPolicy = Literal["full", "minmax"]
ResizeMode = Literal["stretch", "pad"]
FloatPolicy = Literal["clip", "minmax"]
_LUMINANCE = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class PreprocessParams:
    """Everything that turns decoded pixels into the model's input; saved as `preprocessing` in metadata.json.

    channels / height / width: the model's input (C in {1, 3}); mean / std: x = (unit - mean) / std.
    DICOM (used by `ceal.imaging.dicom`): the file's VOI (window or VOI LUT) when `dicom_use_file_voi`, else
    `ct_window` (center, width in HU) for CT and the `percentiles` (low, high) of the values otherwise;
    MONOCHROME1 inverted so that bright always means high when `invert_monochrome1`.
    """

    channels: int = 3
    height: int = 96
    width: int = 128
    mean: float = 0.5
    std: float = 0.25
    uint16: IntegerPolicy = "full"
    uint16_max: int = 65535
    integer: IntegerPolicy = "minmax"
    floating: FloatPolicy = "clip"
    dicom_use_file_voi: bool = True
    ct_window: tuple[float, float] = (40.0, 400.0)
    percentiles: tuple[float, float] = (1.0, 99.0)
    invert_monochrome1: bool = True
    resize: ResizeMode = "stretch"  # "pad": keep the aspect (fit, centre, pad black), see `content_box`
    version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        checks = [
            (self.channels in (1, 3), f"channels must be 1 or 3, got {self.channels}"),
            (
                self.height >= 1 and self.width >= 1,
                f"height and width must be positive, got {self.height}×{self.width}",
            ),
            (np.isfinite(self.mean), "mean must be finite"),
            (np.isfinite(self.std) and self.std > 0, f"std must be positive, got {self.std}"),
            (self.uint16 in ("full", "minmax"), f"uint16 must be 'full' or 'minmax', got {self.uint16!r}"),
            (0 < self.uint16_max <= 65535, f"uint16_max must be in 1..65535, got {self.uint16_max}"),
            (self.integer in ("full", "minmax"), f"integer must be 'full' or 'minmax', got {self.integer!r}"),
            (self.floating in ("clip", "minmax"), f"floating must be 'clip' or 'minmax', got {self.floating!r}"),
            (len(self.ct_window) == 2 and self.ct_window[1] >= 1, "ct_window must be (center, width ≥ 1) in HU"),
            (
                len(self.percentiles) == 2 and 0 <= self.percentiles[0] < self.percentiles[1] <= 100,
                "percentiles must be (low, high) with 0 ≤ low < high ≤ 100",
            ),
            (self.resize in ("stretch", "pad"), f"resize must be 'stretch' or 'pad', got {self.resize!r}"),
            (self.version == CONTRACT_VERSION, f"preprocessing version {self.version} is not {CONTRACT_VERSION}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"preprocessing: {message}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PreprocessParams:
        """Parse the metadata's `preprocessing` object; raises ValueError naming an unknown or bad field."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"preprocessing: unknown fields {unknown}; this ceal knows {sorted(known)}")
        values = dict(raw)
        for name in ("ct_window", "percentiles"):
            if name in values:
                values[name] = tuple(float(v) for v in values[name])
        return cls(**values)

    def replace(self, **changes: Any) -> PreprocessParams:
        return dataclasses.replace(self, **changes)


def _stretch(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        return np.zeros(values.shape, np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def to_unit(pixels: npt.NDArray[Any], params: PreprocessParams) -> npt.NDArray[np.float32]:
    """Decoded pixels of any supported dtype → float32 in [0, 1], same shape (see the module doc)."""
    a = np.asarray(pixels)
    if a.dtype == np.bool_ or a.dtype.kind not in "uif":
        raise ValueError(f"pixels of dtype {a.dtype} are not an image; send uint8, uint16, int16 or float pixels")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype.kind == "f":
        if params.floating == "minmax":
            return _stretch(a.astype(np.float64))
        return np.clip(a.astype(np.float32), 0.0, 1.0)
    policy, top = (params.uint16, float(params.uint16_max)) if a.dtype == np.uint16 else (params.integer, 0.0)
    values = a.astype(np.float64)
    if policy == "minmax":
        return _stretch(values)
    if a.dtype != np.uint16:
        info = np.iinfo(a.dtype)
        values, top = values - float(info.min), float(info.max) - float(info.min)
    return np.clip(values / top, 0.0, 1.0).astype(np.float32)


def to_channels(unit: npt.NDArray[np.float32], channels: int) -> npt.NDArray[np.float32]:
    """(H, W) / (H, W, 1) / (H, W, 3) / (H, W, 4) → (H, W, channels); alpha dropped."""
    if unit.ndim == 2:
        unit = unit[..., None]
    if unit.ndim != 3 or unit.shape[2] not in (1, 3, 4):
        raise ValueError(f"image shape {list(unit.shape)} is not an image; send (H, W), (H, W, 1) or (H, W, 3)")
    if unit.shape[2] == 4:
        unit = unit[..., :3]
    if unit.shape[2] == channels:
        return unit
    if channels == 3:
        return np.repeat(unit, 3, axis=2)
    return (unit @ _LUMINANCE)[..., None].astype(np.float32)


def _weights(size_in: int, size_out: int) -> npt.NDArray[np.float64]:
    """(size_out, size_in) resampling matrix of PIL's BILINEAR filter (antialiased when shrinking)."""
    scale = size_in / size_out
    widen = max(scale, 1.0)
    support = widen  # the triangle's support (1) times the widening
    centers = (np.arange(size_out) + 0.5) * scale  # (out,)
    lo = np.maximum((centers - support + 0.5).astype(np.int64), 0)  # PIL truncates toward zero
    hi = np.minimum((centers + support + 0.5).astype(np.int64), size_in)
    j = np.arange(size_in)[None, :]  # (1, in)
    taps = 1.0 - np.abs((j - centers[:, None] + 0.5) / widen)  # (out, in)
    inside = (j >= lo[:, None]) & (j < hi[:, None])
    w = np.where(inside, np.maximum(taps, 0.0), 0.0)
    total = w.sum(axis=1, keepdims=True)
    weights: npt.NDArray[np.float64] = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    return weights


def resize_planes(planes: npt.NDArray[np.floating], height: int, width: int) -> npt.NDArray[np.float32]:
    """Bilinear (antialiased) resize of (..., H, W) float planes to (..., height, width), float32."""
    h, w = planes.shape[-2:]
    if (h, w) == (height, width):
        return planes.astype(np.float32, copy=False)
    rows, cols = _weights(h, height), _weights(w, width)  # (height, H), (width, W)
    out: npt.NDArray[np.float64] = np.einsum("yh,...hw,xw->...yx", rows, planes.astype(np.float64), cols, optimize=True)
    return out.astype(np.float32)


def content_box(height: int, width: int, in_height: int, in_width: int, mode: str) -> tuple[int, int, int, int]:
    """(top, left, h, w): where an (height, width) image lies in the (in_height, in_width) input. "stretch":
    all of it; "pad": the largest box of the image's aspect that fits, centred (at least 1 × 1)."""
    if mode != "pad":
        return 0, 0, in_height, in_width
    scale = min(in_height / height, in_width / width)
    h = min(in_height, max(1, round(height * scale)))
    w = min(in_width, max(1, round(width * scale)))
    return (in_height - h) // 2, (in_width - w) // 2, h, w


def fit_planes(
    planes: npt.NDArray[np.floating], in_height: int, in_width: int, mode: str, fill: float = 0.0
) -> npt.NDArray[np.float32]:
    """(..., H, W) planes → (..., in_height, in_width): resized ("stretch"), or resized into the `content_box`
    and surrounded by `fill` ("pad")."""
    top, left, h, w = content_box(planes.shape[-2], planes.shape[-1], in_height, in_width, mode)
    inner = resize_planes(planes, h, w)
    if (h, w) == (in_height, in_width):
        return inner
    out = np.full((*planes.shape[:-2], in_height, in_width), fill, dtype=np.float32)
    out[..., top : top + h, left : left + w] = inner
    return out


def to_model_input(pixels: npt.NDArray[Any], params: PreprocessParams) -> npt.NDArray[np.float32]:
    """The contract: decoded pixels (H, W[, C]) → model input float32 (C, height, width), normalised."""
    unit = to_channels(to_unit(pixels, params), params.channels)  # (H, W, C)
    planes = fit_planes(np.moveaxis(unit, 2, 0), params.height, params.width, params.resize)  # (C, h, w)
    return ((planes - np.float32(params.mean)) / np.float32(params.std)).astype(np.float32)
