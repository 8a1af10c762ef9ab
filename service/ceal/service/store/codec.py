"""Arrays <-> bytes for the store, and the content hashes that name images and masks.

Blobs are `np.save` (dtype, shape and byte order in the header, no pickles) compressed with zlib: lossless
for every numeric dtype, readable by any numpy, and independent of the database engine.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zlib

import numpy as np

from ceal.service.store.errors import StoreDamaged

__all__ = ["content_digest", "decode_array", "decode_known", "encode_array", "image_id_of"]

# Level 3: masks and images shrink nearly as much as at 9, far faster; labels are written while someone waits.
_ZLIB_LEVEL = 3
IMAGE_ID_HEX = 32


def _canonical(array: np.ndarray) -> np.ndarray:
    """C-contiguous, little-endian copy (or view) of `array`: the byte layout every hash is taken over."""
    canonical = np.ascontiguousarray(array)
    if canonical.dtype.byteorder == ">":
        canonical = canonical.astype(canonical.dtype.newbyteorder("<"))
    return canonical


def content_digest(array: np.ndarray) -> str:
    """Hex sha256 of dtype, shape and pixel bytes of `array` (any shape).

    The hashed message is `f"{dtype.str}|{'x'.join(shape)}|"` (ASCII) followed by the C-order, little-endian
    bytes: the same values in another dtype or shape hash differently, a big-endian copy hashes the same.
    """
    canonical = _canonical(array)
    header = f"{canonical.dtype.str}|{'x'.join(str(n) for n in canonical.shape)}|".encode("ascii")
    digest = hashlib.sha256(header)
    digest.update(canonical.tobytes())
    return digest.hexdigest()


def image_id_of(pixels: np.ndarray) -> str:
    """An image's id: the first 32 hex characters of `content_digest(pixels)`. pixels: (H, W) or (H, W, C)."""
    return content_digest(pixels)[:IMAGE_ID_HEX]


def encode_array(array: np.ndarray) -> bytes:
    """Lossless blob of `array` (any shape, numeric or bool dtype): np.save bytes, zlib-compressed."""
    buffer = io.BytesIO()
    np.save(buffer, _canonical(array), allow_pickle=False)
    return zlib.compress(buffer.getvalue(), _ZLIB_LEVEL)


def decode_array(blob: bytes) -> np.ndarray:
    """The array `encode_array` stored: same dtype (little-endian), shape and values; a fresh copy."""
    try:
        loaded = np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)
    except (zlib.error, ValueError, OSError, EOFError) as exc:
        raise StoreDamaged(
            "a stored array could not be decoded: the database file is damaged; restore it from a backup"
        ) from exc
    if not isinstance(loaded, np.ndarray):
        raise StoreDamaged("a stored blob is not a single array: the database file is damaged")
    return loaded


_MAX_HEADER = 4096  # np.save's header is 128 bytes (format 1.0) for any array the store keeps


@functools.lru_cache(maxsize=64)
def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The bytes `np.save` writes before the data of a C-order array of `dtype` and `shape`."""
    buffer = io.BytesIO()
    zeros = np.zeros(shape, np.dtype(dtype))
    np.save(buffer, zeros, allow_pickle=False)
    written = buffer.getvalue()
    return written[: len(written) - zeros.nbytes]


def decode_known(blob: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """`decode_array` for a blob whose dtype and shape the caller knows (a packed mask: its row says its size).

    When the stored header is the one this numpy writes for that dtype and shape, the data are read straight
    after it (no header parse: a tenth of the time for small arrays); any other blob, a damaged one included,
    goes through `decode_array`, whose array the caller still checks."""
    try:
        raw = zlib.decompress(blob)
    except zlib.error:
        return decode_array(blob)  # says what is damaged
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if not 0 < len(raw) - size <= _MAX_HEADER:  # not this shape (checked before a layout of it is built)
        return decode_array(blob)
    header = _npy_header(dtype, shape)
    if len(raw) != len(header) + size or not raw.startswith(header):
        return decode_array(blob)
    return np.frombuffer(raw, np.dtype(dtype), offset=len(header)).reshape(shape).copy()
