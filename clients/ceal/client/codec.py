"""numpy ↔ `ceal.v1.Tensor`, and what the SDK accepts as an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ceal.v1 import tensor_pb2

_TO_ENUM: dict[np.dtype[Any], int] = {
    np.dtype("uint8"): tensor_pb2.DTYPE_UINT8,
    np.dtype("uint16"): tensor_pb2.DTYPE_UINT16,
    np.dtype("int16"): tensor_pb2.DTYPE_INT16,
    np.dtype("int32"): tensor_pb2.DTYPE_INT32,
    np.dtype("float16"): tensor_pb2.DTYPE_FLOAT16,
    np.dtype("float32"): tensor_pb2.DTYPE_FLOAT32,
    np.dtype("float64"): tensor_pb2.DTYPE_FLOAT64,
    np.dtype("bool"): tensor_pb2.DTYPE_BOOL,
}
_FROM_ENUM: dict[int, np.dtype[Any]] = {code: dt for dt, code in _TO_ENUM.items()}

ImageLike = np.ndarray | bytes | str | Path


def to_tensor(array: np.ndarray) -> tensor_pb2.Tensor:
    """Encode an array as dtype + shape + little-endian C-order bytes."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _TO_ENUM:
        raise TypeError(f"arrays of dtype {array.dtype} cannot be sent; use one of {sorted(map(str, _TO_ENUM))}")
    data = np.ascontiguousarray(array, dtype=native.newbyteorder("<")).tobytes()
    return tensor_pb2.Tensor(dtype=_TO_ENUM[native], shape=list(array.shape), data=data)  # type: ignore[arg-type]


def as_numpy(tensor: tensor_pb2.Tensor) -> np.ndarray | None:
    """Decode a Tensor; None when the field was left empty by the server."""
    if tensor.dtype == tensor_pb2.DTYPE_UNSPECIFIED:
        return None
    dtype = _FROM_ENUM[tensor.dtype]
    array: np.ndarray = np.frombuffer(tensor.data, dtype=dtype.newbyteorder("<")).reshape(tuple(tensor.shape))
    return array.astype(dtype)


def to_image(image: ImageLike) -> tensor_pb2.Image:
    """An array (H, W[, C]), file bytes, or a path to a PNG / JPEG / DICOM file → Image message."""
    if isinstance(image, np.ndarray):
        return tensor_pb2.Image(tensor=to_tensor(image))
    if isinstance(image, str | Path):
        image = Path(image).read_bytes()
    if isinstance(image, bytes | bytearray):
        return tensor_pb2.Image(encoded=tensor_pb2.EncodedImage(data=bytes(image)))
    raise TypeError(f"cannot send {type(image).__name__} as an image; pass a numpy array, bytes or a path")
