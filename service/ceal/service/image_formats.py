"""The decoder surface, kept as narrow as the API: which file format the bytes are, and checks on DICOM.

Only PNG, JPEG and DICOM are ever decoded. The format is sniffed from the leading bytes and compared with the
one the request declares, so a BMP, GIF, TIFF or EPS file sent as PNG or JPEG is refused before any decoder
sees it (PIL is opened with `formats=` as well, so no other PIL plugin is reachable from the network). DICOM
numeric attributes that scale pixels are checked to be finite and in range before they are applied, and a
compressed DICOM whose transfer syntax this install cannot decode is refused naming the transfer syntax.

Every check raises `InvalidInput` naming the field and what to change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ceal.service.errors import InvalidInput

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = [
    "PIL_FORMATS",
    "check_declared_format",
    "check_dicom_attributes",
    "check_transfer_syntax",
    "is_compressed",
    "sniff",
    "transfer_syntax_name",
    "undecodable_compressed",
]

PNG = "PNG"
JPEG = "JPEG"
DICOM = "DICOM"
PIL_FORMATS = {PNG: (PNG,), JPEG: (JPEG,)}  # the only PIL plugins a request can reach

# Leading bytes of the formats a client may send by mistake (named in the refusal), and of ours.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"BM", "BMP"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%!PS", "EPS/PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS/PostScript"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
)

# Bounds on the DICOM attributes applied to pixel values (beyond them the float32 result overflows, or the
# file is damaged): |Rescale Slope| in (0, 1e6], |Rescale Intercept| <= 1e9, Window Width in (0, 1e9],
# |Window Center| <= 1e9.
MAX_SLOPE = 1e6
MAX_OFFSET = 1e9


def sniff(data: bytes) -> str | None:
    """The format the bytes are in ("PNG", "JPEG", "DICOM", or another format's name), None if unknown."""
    if data[128:132] == b"DICM":
        return DICOM
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def check_declared_format(data: bytes, declared: str) -> None:
    """Refuse bytes that are not in the `declared` format ("PNG", "JPEG" or "DICOM")."""
    found = sniff(data)
    if found == declared:
        return
    what = f"{found} data" if found else "not a recognisable image file"
    raise InvalidInput(
        f"image.encoded.format is {declared} but the bytes are {what}; send {declared} bytes, or set "
        "image.encoded.format to the file's format (PNG, JPEG and DICOM are accepted)"
    )


def _numbers(value: Any) -> list[float]:
    """A DICOM value (one number, a multi-value, or text) as floats."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [float(value)]
    return [float(v) for v in value]


def _attribute(ds: Dataset, keyword: str) -> list[float] | None:
    """The numeric values of `keyword` (None if absent or empty); InvalidInput if they are not numbers."""
    if keyword not in ds:
        return None
    try:
        raw = ds[keyword].value
        if raw is None or raw == "":
            return None
        return _numbers(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"DICOM {keyword} is not a number; send a file with a valid {keyword}") from exc


# keyword: (largest magnitude, sign rule) — "nonzero": 0 < |v|; "positive": v > 0; "any": any finite value
_BOUNDS = {
    "RescaleSlope": (MAX_SLOPE, "nonzero"),
    "RescaleIntercept": (MAX_OFFSET, "any"),
    "WindowCenter": (MAX_OFFSET, "any"),
    "WindowWidth": (MAX_OFFSET, "positive"),
}
_RULES = {
    "nonzero": "a finite number, not 0, of magnitude at most",
    "positive": "a finite number greater than 0 and at most",
    "any": "a finite number of magnitude at most",
}


def check_dicom_attributes(ds: Dataset) -> None:
    """Rescale Slope/Intercept and Window Center/Width finite and in range, before they scale pixels."""
    for keyword, (high, rule) in _BOUNDS.items():
        for v in _attribute(ds, keyword) or []:
            ok = math.isfinite(v) and abs(v) <= high
            ok = ok and (v > 0 if rule == "positive" else v != 0 if rule == "nonzero" else True)
            if not ok:
                raise InvalidInput(
                    f"DICOM {keyword} is {v!r}; it must be {_RULES[rule]} {high:g}: fix the attribute "
                    "(or re-export the image) and send it again"
                )


def transfer_syntax_name(ds: Dataset) -> tuple[str, str]:
    """(UID, name) of the file's transfer syntax; ("", "unknown") when the file meta has none."""
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid is None:
        return "", "unknown"
    name = getattr(uid, "name", "") or str(uid)
    return str(uid), name


def is_compressed(ds: Dataset) -> bool:
    """Whether the file's pixel data is in a compressed (encapsulated) transfer syntax."""
    from pydicom.uid import UID

    uid, _ = transfer_syntax_name(ds)
    return bool(uid) and bool(UID(uid).is_compressed)


def check_transfer_syntax(ds: Dataset) -> None:
    """Refuse a compressed transfer syntax for which no pixel decoder is installed, naming it."""
    from pydicom.pixels import get_decoder  # type: ignore[attr-defined]
    from pydicom.uid import UID

    if not is_compressed(ds):
        return
    uid, name = transfer_syntax_name(ds)
    try:
        available = bool(get_decoder(UID(uid)).is_available)
    except (NotImplementedError, ValueError):
        available = False
    if not available:
        raise InvalidInput(
            f"DICOM transfer syntax {name} ({uid}) cannot be decoded by this server (no decoder for it is "
            "installed); send the file uncompressed (Explicit VR Little Endian, e.g. `gdcmconv --raw`) or in "
            "JPEG baseline/extended, JPEG-LS, JPEG 2000 or RLE"
        )


def undecodable_compressed(ds: Dataset, exc: BaseException) -> InvalidInput:
    """The refusal for compressed pixel data whose decoder failed: names the transfer syntax."""
    uid, name = transfer_syntax_name(ds)
    return InvalidInput(
        f"DICOM pixel data in transfer syntax {name} ({uid}) could not be decoded ({type(exc).__name__}); "
        "the compressed data is damaged or uses an unsupported variant: send the file uncompressed "
        "(Explicit VR Little Endian, e.g. `gdcmconv --raw`)"
    )
