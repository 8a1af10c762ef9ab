"""Wire codec: `ceal.v1.Tensor` ↔ numpy, and image bytes (PNG, JPEG, DICOM) → pixel arrays.

Every check raises `InvalidInput` with a message that says what to change.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage

from ceal.imaging import PreprocessParams
from ceal.imaging.dicom import DicomPixelError, dicom_frames
from ceal.service import image_formats
from ceal.service.errors import InvalidInput
from ceal.v1 import tensor_pb2

if TYPE_CHECKING:
    from pydicom import Dataset

_DTYPES: dict[int, np.dtype[np.generic]] = {
    tensor_pb2.DTYPE_UINT8: np.dtype("<u1"),
    tensor_pb2.DTYPE_UINT16: np.dtype("<u2"),
    tensor_pb2.DTYPE_INT16: np.dtype("<i2"),
    tensor_pb2.DTYPE_INT32: np.dtype("<i4"),
    tensor_pb2.DTYPE_FLOAT16: np.dtype("<f2"),
    tensor_pb2.DTYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DTYPE_FLOAT64: np.dtype("<f8"),
    tensor_pb2.DTYPE_BOOL: np.dtype("?"),
}
_ENUMS = {dt.newbyteorder("="): code for code, dt in _DTYPES.items()}

DEFAULT_PREPROCESSING = PreprocessParams()
"""The DICOM policy for pixels decoded before any model is known (pool registration)."""

MAX_DIMS = 8  # axes a Tensor may have (numpy allows 64; no ceal tensor has more than 5)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def tensor_to_numpy(t: tensor_pb2.Tensor, *, what: str = "tensor", max_elements: int | None = None) -> np.ndarray:
    """Decode a Tensor; the array owns a copy of the bytes (writable, native byte order)."""
    if t.dtype not in _DTYPES:
        names = ", ".join(tensor_pb2.DType.Name(c) for c in _DTYPES)
        raise InvalidInput(f"{what}: dtype {t.dtype} is not supported; use one of {names}")
    shape = tuple(int(s) for s in t.shape)
    if not shape or any(s <= 0 for s in shape):
        raise InvalidInput(f"{what}: shape {list(shape)} must be non-empty with positive sides")
    if len(shape) > MAX_DIMS:
        raise InvalidInput(f"{what}: shape has {len(shape)} axes, more than {MAX_DIMS}; send (H, W) or (H, W, C)")
    dtype = _DTYPES[t.dtype]
    count = math.prod(shape)  # Python integers: a declared shape that overflows int64 stays exact
    if max_elements is not None and count > max_elements:
        raise InvalidInput(f"{what}: {count} elements exceed the limit of {max_elements}; send a smaller image")
    if len(t.data) != count * dtype.itemsize:
        raise InvalidInput(
            f"{what}: shape {list(shape)} of {tensor_pb2.DType.Name(t.dtype)} needs {count * dtype.itemsize} bytes, "
            f"got {len(t.data)}"
        )
    return np.frombuffer(t.data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def numpy_to_tensor(a: np.ndarray) -> tensor_pb2.Tensor:
    """Encode an array (C order, little-endian on the wire)."""
    native = a.dtype.newbyteorder("=")
    if native not in _ENUMS:
        raise TypeError(f"dtype {a.dtype} has no wire encoding")
    data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
    return tensor_pb2.Tensor(dtype=_ENUMS[native], shape=list(a.shape), data=data)  # type: ignore[arg-type]


def _check_size(height: int, width: int, max_pixels: int | None) -> None:
    """Refuse an oversized image from its header, before its pixels are decoded into memory."""
    if max_pixels is not None and height * width > max_pixels:
        raise InvalidInput(f"image of {height}×{width} pixels exceeds the limit of {max_pixels}; downsample it first")


def _decode_raster(data: bytes, kind: str, max_pixels: int | None = None) -> np.ndarray:
    image_formats.check_declared_format(data, kind)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            # formats=: only this plugin may open the bytes; no other PIL decoder is reachable from the network
            img = PILImage.open(io.BytesIO(data), formats=image_formats.PIL_FORMATS[kind])
            _check_size(img.height, img.width, max_pixels)
            img.load()
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"image bytes are not a decodable {kind} file ({type(exc).__name__}); send a valid file"
        ) from exc
    converted: PILImage.Image = img
    if img.mode in ("RGBA", "P", "CMYK", "YCbCr", "LA"):
        converted = img.convert("RGB")
    elif img.mode not in ("L", "RGB", "I;16", "I", "F"):
        converted = img.convert("L")
    return np.asarray(converted)


def _decode_dicom(
    data: bytes, max_pixels: int | None = None, dicom: PreprocessParams | None = DEFAULT_PREPROCESSING
) -> np.ndarray:
    try:
        import pydicom

        ds = pydicom.dcmread(io.BytesIO(data), force=False)
        _check_size(int(ds.Rows), int(ds.Columns), max_pixels)
        image_formats.check_dicom_attributes(ds)
        image_formats.check_transfer_syntax(ds)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"image bytes are not a decodable DICOM file ({type(exc).__name__}); send a DICOM Part 10 file with pixels"
        ) from exc
    try:
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("DICOM Number of Frames is not a number; send a valid DICOM file") from exc
    if frames > 1:  # refused before the frames are decoded: they could be many times max_pixels
        raise InvalidInput("DICOM image has several frames; send one frame per image (the PACS bridge splits them)")
    if dicom is not None:
        try:
            unit: np.ndarray = dicom_frames(ds, dicom)[0][0]  # the one frame, float32 in [0, 1]
            return unit
        except DicomPixelError as exc:
            raise InvalidInput(str(exc)) from exc
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        if image_formats.is_compressed(ds):
            raise image_formats.undecodable_compressed(ds, exc) from exc
        raise InvalidInput(
            f"image bytes are not a decodable DICOM file ({type(exc).__name__}); send a DICOM Part 10 file with pixels"
        ) from exc
    try:
        return _dicom_intensities(ds, pixels)
    except InvalidInput:
        raise
    except Exception as exc:  # a damaged attribute makes the LUT code fail in many ways; all mean "bad file"
        raise InvalidInput(
            f"DICOM rescale or window attributes are not usable ({type(exc).__name__}); check Rescale Slope/Intercept "
            "and Window Center/Width"
        ) from exc


def _dicom_intensities(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Pre-contract DICOM intensities, kept for models exported before it: Modality LUT, VOI LUT when windowed,
    then stretched per image to [0, 1] (MONOCHROME1 inverted); colour images as they are."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut  # type: ignore[attr-defined]

    if getattr(ds, "PhotometricInterpretation", "") in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        return np.asarray(pixels)
    values = apply_modality_lut(pixels, ds).astype(np.float32)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        values = apply_voi_lut(values, ds).astype(np.float32)
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        scaled = 1.0 - scaled
    return scaled.astype(np.float32)


def decode_image_bytes(
    data: bytes, fmt: int, max_pixels: int | None = None, dicom: PreprocessParams | None = DEFAULT_PREPROCESSING
) -> np.ndarray:
    """PNG / JPEG / DICOM bytes → (H, W) or (H, W, C) array. Format 0 sniffs the magic bytes.

    With `max_pixels`, an image whose header says it is larger is refused before it is decoded. A DICOM is
    decoded to float32 [0, 1] by the preprocessing contract with `dicom` (the model's `preprocessing`), or by
    the pre-contract rule when `dicom` is None (a model exported before the contract)."""
    if not data:
        raise InvalidInput("image.encoded.data is empty; send the file's bytes")
    if fmt == tensor_pb2.IMAGE_FORMAT_UNSPECIFIED:
        if data.startswith(PNG_MAGIC):
            fmt = tensor_pb2.IMAGE_FORMAT_PNG
        elif data.startswith(JPEG_MAGIC):
            fmt = tensor_pb2.IMAGE_FORMAT_JPEG
        elif data[128:132] == b"DICM":
            fmt = tensor_pb2.IMAGE_FORMAT_DICOM
        else:
            found = image_formats.sniff(data)
            what = f"the bytes are {found} data" if found else "image format not recognised from its bytes"
            raise InvalidInput(f"{what}; send PNG, JPEG or DICOM, or set format")
    if fmt == tensor_pb2.IMAGE_FORMAT_DICOM:
        return _decode_dicom(data, max_pixels, dicom)
    if fmt in (tensor_pb2.IMAGE_FORMAT_PNG, tensor_pb2.IMAGE_FORMAT_JPEG):
        return _decode_raster(data, tensor_pb2.ImageFormat.Name(fmt).removeprefix("IMAGE_FORMAT_"), max_pixels)
    raise InvalidInput(f"image format {fmt} is not supported; use PNG, JPEG or DICOM")


def decode_image(
    image: tensor_pb2.Image, *, max_pixels: int, dicom: PreprocessParams | None = DEFAULT_PREPROCESSING
) -> np.ndarray:
    """An Image message → pixel array (H, W) or (H, W, C), C in {1, 3}, checked against `max_pixels`.

    `dicom`: how a DICOM is windowed, see `decode_image_bytes`."""
    which = image.WhichOneof("source")
    if which == "tensor":
        pixels = tensor_to_numpy(image.tensor, what="image.tensor", max_elements=max_pixels * 3)
    elif which == "encoded":
        pixels = decode_image_bytes(image.encoded.data, image.encoded.format, max_pixels, dicom)
    else:
        raise InvalidInput("image is empty; set image.tensor or image.encoded")
    return check_image_array(pixels, max_pixels=max_pixels)


def check_image_array(pixels: np.ndarray, *, max_pixels: int) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 3))):
        raise InvalidInput(f"image shape {list(pixels.shape)} is not an image; send (H, W), (H, W, 1) or (H, W, 3)")
    h, w = pixels.shape[:2]
    if h * w > max_pixels:
        raise InvalidInput(f"image of {h}×{w} pixels exceeds the limit of {max_pixels}; downsample it first")
    if pixels.dtype == np.bool_:
        raise InvalidInput("image dtype bool is not an image; send uint8, uint16, int16 or float32 pixels")
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        raise InvalidInput("image contains NaN or infinite values; send finite pixel values")
    return pixels
