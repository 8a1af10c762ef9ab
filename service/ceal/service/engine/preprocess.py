"""Pixels in any size, dtype and channel count → the model's normalised input, and maps back.

A model whose metadata carries `preprocessing` is fed by the preprocessing contract
(`ceal.imaging.to_model_input`, the same function the trainer trained it through). A model exported before
the contract has none: it keeps the pre-contract normalisation below (`legacy_prepare`), said once in the log
per model. Legacy intensity: uint8 / 255, uint16 / 65535, float taken as already in [0, 1], signed integers
min-max scaled per image. Channels: grayscale is repeated to RGB, RGB becomes luminance for 1-channel models.
Size (both): as the metadata's `resize` says: "stretch" to the input size, or "pad" (keep the aspect: fit,
centre, pad with black), where `content_box` is the part of the input the image fills and maps are cropped to.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from PIL import Image as PILImage

from ceal.imaging import content_box, to_model_input
from ceal.service.errors import InvalidInput
from ceal.service.metadata import ModelMetadata

_log = logging.getLogger(__name__)
_legacy_said: set[tuple[str, int]] = set()
_legacy_lock = threading.Lock()


def to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """Any supported dtype → float32 in [0, 1] (same shape)."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535.0
    if pixels.dtype.kind == "f":
        return np.clip(pixels.astype(np.float32), 0.0, 1.0)
    values = pixels.astype(np.float32)
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def to_channels(unit: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) / (H, W, 1) / (H, W, 3) → (H, W, channels)."""
    if unit.ndim == 2:
        unit = unit[..., None]
    if unit.shape[2] == channels:
        return unit
    if channels == 3:
        return np.repeat(unit, 3, axis=2)
    luminance = unit @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return luminance[..., None]


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of one float32 (H, W) plane."""
    if plane.shape == (height, width):
        return plane.astype(np.float32, copy=False)
    img = PILImage.fromarray(plane.astype(np.float32), mode="F")
    return np.asarray(img.resize((width, height), PILImage.Resampling.BILINEAR), dtype=np.float32)


def resize_planes(planes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of (..., H, W) float32 planes."""
    flat = planes.reshape(-1, *planes.shape[-2:])
    out = np.stack([resize_plane(p, height, width) for p in flat]) if len(flat) else flat
    return out.reshape(*planes.shape[:-2], height, width)


def fit_planes(planes: np.ndarray, in_height: int, in_width: int, mode: str, fill: float = 0.0) -> np.ndarray:
    """(..., H, W) planes → (..., in_height, in_width): bilinear resize ("stretch"), or resized into the
    `content_box` and surrounded by `fill` ("pad")."""
    top, left, h, w = content_box(planes.shape[-2], planes.shape[-1], in_height, in_width, mode)
    inner = resize_planes(planes, h, w)
    if (h, w) == (in_height, in_width):
        return inner
    out = np.full((*planes.shape[:-2], in_height, in_width), fill, dtype=np.float32)
    out[..., top : top + h, left : left + w] = inner
    return out


def crop_to_content(planes: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """(..., h, w) planes at the input size → the `content_box` of an (height, width) image (a view)."""
    top, left, h, w = content_box(height, width, planes.shape[-2], planes.shape[-1], mode)
    return planes[..., top : top + h, left : left + w]


def prepare(pixels: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """Pixels (H, W[, C]) → model input float32 (C, h, w), normalised and sized as the metadata says."""
    if meta.preprocessing is None:
        _say_legacy(meta)
        return legacy_prepare(pixels, meta)
    try:
        return to_model_input(pixels, meta.preprocessing)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def _say_legacy(meta: ModelMetadata) -> None:
    key = (meta.name, meta.version)
    with _legacy_lock:
        if key in _legacy_said:
            return
        _legacy_said.add(key)
    _log.warning(
        "model %s/%d was exported before the preprocessing contract (no 'preprocessing' in its metadata): "
        "served with the pre-contract normalisation; re-export it to serve it as the trainer now prepares images",
        meta.name,
        meta.version,
    )


def legacy_prepare(pixels: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """The pre-contract preparation, kept for models exported before it: (H, W[, C]) → (C, h, w)."""
    unit = to_channels(to_unit_range(pixels), meta.input_channels)
    planes = np.moveaxis(unit, 2, 0)
    planes = fit_planes(planes, meta.input_height, meta.input_width, meta.resize)
    return ((planes - meta.mean) / meta.std).astype(np.float32)
