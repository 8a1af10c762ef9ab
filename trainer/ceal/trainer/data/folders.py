"""Image/mask folder pairs for training: the ISIC 2017 layout and generic same-stem folders.

ISIC 2017 unpacks as `images/X.jpg` with `masks/X_segmentation.png` (the image folder also holds
`X_superpixels.png`, which is skipped); generic folders pair `images/X.<ext>` with `masks/X.<ext>`, for any of
.png/.jpg/.jpeg/.bmp/.tif/.tiff, plus .npy arrays and .dcm DICOM images. Images are uint8 (H, W, 3) RGB made by
the preprocessing contract (`ceal.imaging`: the same intensity rule and resize the server applies), so a
model sees in training what it is served; masks uint8 (H, W) class indices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ceal.imaging import PreprocessParams, content_box, resize_planes, to_channels, to_unit

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_CLASS_INDEX",
    "DatasetError",
    "Pair",
    "find_pairs",
    "load_image",
    "load_mask",
    "read_pixels",
    "resize_pair",
    "split_ids",
    "to_training_image",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy", ".dcm")
DEFAULT_PARAMS = PreprocessParams()
MASK_SUFFIX = "_segmentation"
_SKIPPED_SUFFIXES = ("_superpixels", MASK_SUFFIX)  # ISIC side files that live beside the images
MAX_CLASS_INDEX = 20  # a mask whose max is ≤ this holds class indices, otherwise 0/255-style binary
_SHOWN = 5  # file names quoted in an error message


class DatasetError(ValueError):
    """A data folder or file that cannot be used as it is; the message says what to change."""


@dataclass(frozen=True)
class Pair:
    """One training example; mask_path is None for an unlabelled image (allow_unlabelled=True)."""

    image_id: str
    image_path: Path
    mask_path: Path | None


def _image_files(folder: Path, role: str) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{role} folder {folder} does not exist or is not a folder; pass the folder path")
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _index_masks(masks: Path, beside_images: bool) -> dict[str, Path]:
    """Mask files by the image id they belong to: `X_segmentation.*` and `X.*` both map to X, except
    beside the images (one folder for both), where only `X_segmentation.*` is a mask."""
    index: dict[str, Path] = {}
    for path in _image_files(masks, "masks"):
        stem = path.stem
        if stem.endswith(MASK_SUFFIX):
            image_id = stem[: -len(MASK_SUFFIX)]
        elif beside_images:
            continue
        else:
            image_id = stem
        if image_id in index:
            raise DatasetError(
                f"two masks for image {image_id!r} in {masks}: {index[image_id].name} and {path.name}; keep one"
            )
        index[image_id] = path
    return index


def find_pairs(images: Path, masks: Path, allow_unlabelled: bool = False) -> list[Pair]:
    """Pair every image in `images` with its mask in `masks` (may be the same folder), sorted by id.

    Raises DatasetError (a ValueError) when images lack masks, unless allow_unlabelled, which gives those
    pairs mask_path=None; masks without an image are ignored.
    """
    found: dict[str, Path] = {}
    for path in _image_files(images, "images"):
        if path.stem.endswith(_SKIPPED_SUFFIXES):
            continue
        if path.stem in found:
            raise DatasetError(
                f"two images share the id {path.stem!r} in {images}: {found[path.stem].name} and "
                f"{path.name}; rename or remove one"
            )
        found[path.stem] = path
    if not found:
        raise DatasetError(f"no images in {images}; expected files ending in {', '.join(IMAGE_SUFFIXES)}")
    index = _index_masks(masks, beside_images=masks.resolve() == images.resolve())
    pairs = [Pair(image_id, path, index.get(image_id)) for image_id, path in sorted(found.items())]
    missing = [pair.image_path.name for pair in pairs if pair.mask_path is None]
    if missing and not allow_unlabelled:
        shown = ", ".join(missing[:_SHOWN]) + (", …" if len(missing) > _SHOWN else "")
        raise DatasetError(
            f"{len(missing)} of {len(pairs)} images in {images} have no mask in {masks} ({shown}). "
            f"A mask for X.jpg is X{MASK_SUFFIX}.png (ISIC 2017) or X.png/.bmp/.tif (same stem). Add the "
            "missing masks, point --masks at the right folder, or pass --allow-unlabelled (allow_unlabelled=True) "
            "to train on the labelled ones"
        )
    return pairs


def _open(path: Path, what: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except (OSError, SyntaxError) as exc:  # PIL raises both for damaged files
        raise DatasetError(f"cannot read {what} {path.name}: {exc}; replace or remove the file") from exc


def read_pixels(path: Path, params: PreprocessParams = DEFAULT_PARAMS) -> NDArray[Any]:
    """A file's decoded pixels, as the server's codec decodes them: PIL's own dtype (uint8, uint16 for 16-bit
    PNG, int32, float32 for float TIFF), a .npy array as stored, a .dcm through `ceal.imaging.dicom` (float32
    in [0, 1], windowed by `params`). Palette, alpha and other modes become RGB."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.asarray(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read image {path.name}: {exc}; replace or remove the file") from exc
    if suffix == ".dcm":
        import pydicom

        from ceal.imaging.dicom import DicomPixelError, dicom_frames

        try:
            frames, _ = dicom_frames(pydicom.dcmread(path), params)
        except (OSError, ValueError, DicomPixelError) as exc:
            raise DatasetError(f"cannot read DICOM image {path.name}: {exc}") from exc
        if len(frames) != 1:
            raise DatasetError(f"DICOM image {path.name} has {len(frames)} frames; give one file per 2-D image")
        frame: NDArray[Any] = frames[0]
        return frame
    img = _open(path, "image")
    if img.mode in ("RGB", "L", "I;16", "I", "F"):
        return np.asarray(img)
    if img.mode in ("I;16B", "I;16L"):
        return np.asarray(img).astype(np.uint16)
    return np.asarray(img.convert("RGB"))  # P, RGBA, LA, CMYK, YCbCr, 1, …


def to_training_image(pixels: NDArray[Any], params: PreprocessParams = DEFAULT_PARAMS) -> NDArray[np.uint8]:
    """Decoded pixels (H, W[, C]) → uint8 (H, W, 3): the contract's [0, 1] intensities (`to_unit`, 3 channels)
    rounded to 8 bits (within 1/510 of what the server computes)."""
    try:
        unit = to_channels(to_unit(pixels, params), 3)
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    out: NDArray[np.uint8] = np.rint(unit * 255.0).astype(np.uint8)
    return out


def load_image(path: Path, params: PreprocessParams = DEFAULT_PARAMS) -> NDArray[np.uint8]:
    """Image as uint8 (H, W, 3) RGB through the preprocessing contract (`read_pixels`, `to_training_image`):
    uint8 as it is, 16-bit by `params.uint16` (÷ uint16_max by default, as served), floats clipped to [0, 1],
    grey repeated to 3 channels, alpha dropped. EXIF rotation is not applied, so the image stays aligned with
    its mask."""
    return to_training_image(read_pixels(path, params), params)


def load_mask(path: Path) -> NDArray[np.uint8]:
    """Mask as uint8 (H, W). Binary masks come back in {0, 1} (anything > 127 is foreground); a mask
    whose max is ≤ MAX_CLASS_INDEX holds class indices and keeps its values (0/1 masks stay 0/1).
    Palette PNGs give their palette indices; RGB masks use the brightest channel."""
    img = _open(path, "mask")
    arr: NDArray[Any] = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=2)
    if arr.dtype == np.bool_:
        out = arr.astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating) and float(arr.max(initial=0.0)) <= 1.0:
        out = (arr > 0.5).astype(np.uint8)
    elif float(arr.max(initial=0)) <= MAX_CLASS_INDEX:
        out = np.clip(np.rint(arr), 0, MAX_CLASS_INDEX).astype(np.uint8)
    else:
        out = (arr > 127).astype(np.uint8)
    return out


def resize_pair(
    image: NDArray[np.uint8], mask: NDArray[np.uint8], height: int, width: int, mode: str = "stretch"
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Resize image (H, W, 3) bilinearly (the contract's resize) and mask (H, W) by nearest neighbour to
    (height, width). mode "stretch" fills the size; "pad" keeps the aspect: the pair is resized into the
    contract's `content_box`, centred, the image padded black and the mask with background (0)."""
    if height < 1 or width < 1:
        raise DatasetError(f"target size must be positive; got {height}×{width}")
    if mode not in ("stretch", "pad"):
        raise DatasetError(f"resize mode must be 'stretch' or 'pad'; got {mode!r}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise DatasetError(f"image must be (H, W, 3) uint8; got shape {image.shape}; use load_image")
    if mask.shape != image.shape[:2]:
        raise DatasetError(
            f"image is {image.shape[0]}×{image.shape[1]} but its mask is {mask.shape[0]}×{mask.shape[1]}"
            " (or not 2-D); the mask must have the image's height and width"
        )
    top, left, h, w = content_box(image.shape[0], image.shape[1], height, width, mode)
    # the contract's resize (PIL's antialiased bilinear, in float), as the server resizes its input
    planes = resize_planes(np.moveaxis(image, 2, 0).astype(np.float32), h, w)  # (3, h, w)
    img_in = np.clip(np.rint(np.moveaxis(planes, 0, 2)), 0, 255).astype(np.uint8)
    mask_in = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST), dtype=np.uint8)
    if (h, w) == (height, width):
        return img_in, mask_in
    img_out = np.zeros((height, width, 3), np.uint8)
    mask_out = np.zeros((height, width), np.uint8)
    img_out[top : top + h, left : left + w] = img_in
    mask_out[top : top + h, left : left + w] = mask_in
    return img_out, mask_out


def _rank(seed: int, image_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x00{image_id}".encode(), digest_size=8).digest()


def split_ids(ids: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split ids into (train, val), each sorted; val holds round(val_fraction · n) ids (at least one when
    val_fraction > 0 and n ≥ 2). Deterministic in (set of ids, seed), whatever their order, and stable:
    adding ids moves few existing ones between the two sides, since each id's side follows its own hash."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
    unique = set(ids)
    if len(unique) != len(ids):
        raise ValueError(f"ids must be unique; {len(ids) - len(unique)} are repeated")
    n_val = round(val_fraction * len(unique))
    if val_fraction > 0 and n_val == 0 and len(unique) >= 2:
        n_val = 1
    ranked = sorted(unique, key=lambda image_id: (_rank(seed, image_id), image_id))
    return sorted(ranked[n_val:]), sorted(ranked[:n_val])
