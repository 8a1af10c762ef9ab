"""Image and mask files for the pool CLI: finding images in folders, naming them, matching masks by name.

An image's name is its path relative to the folder it was found in (`case1/slice_003.png`), or its file name
when given as a file. A mask matches an image when its path relative to the mask folder, less the suffix and
an optional `_segmentation` / `_mask` ending, equals the image's (or, failing that, when the file stems alone
match one mask). DICOM files (`.dcm`, or any file with the `DICM` preamble) keep their study / series / SOP
UIDs when pydicom is installed (the `pacs` extra); without it the server still decodes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

__all__ = [
    "IMAGE_SUFFIXES",
    "DicomKeys",
    "FolderError",
    "Found",
    "dicom_keys",
    "find_images",
    "is_dicom",
    "mask_path_for",
    "match_masks",
    "read_mask",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm")
MASK_ENDINGS = ("_segmentation", "_mask")
_SKIPPED = ("_superpixels", *MASK_ENDINGS)  # side files of the ISIC layout that sit beside the images
_SHOWN = 5


class FolderError(ValueError):
    """A folder or file that cannot be used as it is; the message says what to change."""


@dataclass(frozen=True)
class Found:
    path: Path
    name: str  # what the pool will call the image


@dataclass(frozen=True)
class DicomKeys:
    study_uid: str
    series_uid: str
    sop_uid: str
    instance_number: int


def is_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def dicom_keys(path: Path) -> DicomKeys | None:
    """The UIDs and instance number of a DICOM file; None without pydicom or when the header lacks them."""
    try:
        import pydicom
    except ImportError:
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises several types for a damaged file
        raise FolderError(f"{path} is not a readable DICOM file ({type(exc).__name__}); remove it") from exc
    study, series, sop = (str(getattr(ds, k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
    if not (study and series and sop):
        return None
    return DicomKeys(study, series, sop, int(getattr(ds, "InstanceNumber", 0) or 0))


def _is_image(path: Path) -> bool:
    if not path.is_file() or path.name.startswith("."):
        return False
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return not path.stem.endswith(_SKIPPED)
    return path.suffix == "" and is_dicom(path)


def find_images(paths: Iterable[Path]) -> list[Found]:
    """Every image under the given folders (recursively, sorted) and the given files, named. Raises
    FolderError for a path that does not exist, a folder without images, or two images with one name."""
    found: list[Found] = []
    for path in paths:
        if path.is_dir():
            inside = [Found(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*")) if _is_image(p)]
            if not inside:
                raise FolderError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)} or DICOM files)")
            found.extend(inside)
        elif path.is_file():
            found.append(Found(path, path.name))
        else:
            raise FolderError(f"{path} does not exist: give image files or folders")
    names: dict[str, Path] = {}
    for f in found:
        if f.name in names and names[f.name] != f.path:
            raise FolderError(
                f"two images would both be called {f.name!r} ({names[f.name]} and {f.path}): register them "
                "one folder at a time, from the folder above both"
            )
        names[f.name] = f.path
    return found


def _key(relative: str) -> str:
    """'case1/slice_003_mask.png' → 'case1/slice_003'."""
    stem = relative.rsplit(".", 1)[0] if "." in relative.rsplit("/", 1)[-1] else relative
    for ending in MASK_ENDINGS:
        if stem.endswith(ending):
            return stem[: -len(ending)]
    return stem


def match_masks(images: Sequence[Found], masks: Path) -> tuple[list[tuple[Found, Path]], list[Found]]:
    """(image, mask file) pairs and the images without a mask. Raises FolderError when the mask folder is
    missing or empty, or when no mask matches any image (the message shows names from both sides)."""
    if not masks.is_dir():
        raise FolderError(f"mask folder {masks} does not exist")
    files = [p for p in sorted(masks.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FolderError(f"{masks} holds no mask files ({', '.join(IMAGE_SUFFIXES)})")
    by_path = {_key(p.relative_to(masks).as_posix()): p for p in files}
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(_key(p.name), []).append(p)
    pairs: list[tuple[Found, Path]] = []
    unmatched: list[Found] = []
    for image in images:
        mask = by_path.get(_key(image.name))
        if mask is None:
            candidates = by_stem.get(_key(image.name.rsplit("/", 1)[-1]), [])
            mask = candidates[0] if len(candidates) == 1 else None
        if mask is None:
            unmatched.append(image)
        else:
            pairs.append((image, mask))
    if not pairs:
        raise FolderError(
            f"no mask in {masks} matches an image by name (images: "
            f"{', '.join(i.name for i in images[:_SHOWN])}; masks: "
            f"{', '.join(p.relative_to(masks).as_posix() for p in files[:_SHOWN])}): name a mask like its image "
            "(X.png, X_segmentation.png or X_mask.png for image X.*)"
        )
    return pairs, unmatched


def read_mask(path: Path) -> np.ndarray:
    """A mask file as uint8 (H, W): single-channel as stored; RGB(A) masks by their first channel. The server
    checks the values against the model's classes (0/1, or 0/255 for a binary model)."""
    try:
        with PILImage.open(path) as img:
            mask = np.asarray(img)
    except (OSError, ValueError) as exc:
        raise FolderError(f"cannot read mask {path}: {exc}") from exc
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    if mask.dtype != np.uint8:
        if mask.size and (int(mask.min()) < 0 or int(mask.max()) > 255):
            raise FolderError(f"mask {path} has values outside 0-255: save class indices as 8-bit PNG")
        mask = mask.astype(np.uint8)
    return mask


def mask_path_for(out: Path, name: str, image_id: str) -> Path:
    """Where an exported mask goes: OUT/<name with .png>, or OUT/<image id>.png for an unnamed image. A name
    that would leave OUT (absolute, or with '..') is flattened to its file name."""
    if not name:
        return out / f"{image_id}.png"
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        relative = Path(relative.name)
    return out / relative.with_suffix(".png")
