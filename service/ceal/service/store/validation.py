"""Input checks shared by every backend. Each raises InvalidInput with a message that says what to send
(`require_registered`, NotFound)."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable

import numpy as np

from ceal.service.store.base import LABEL_SOURCES, GroupLevel, LabelSource, ScoreRow
from ceal.service.store.errors import InvalidInput, NotFound

__all__ = [
    "check_claim_request",
    "check_group_level",
    "check_image_name",
    "check_image_pixels",
    "check_label_request",
    "check_lease_request",
    "check_mask",
    "check_name",
    "check_pool",
    "check_score_row",
    "check_source",
    "check_sources",
    "require_registered",
]

_POOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PIXEL_KINDS = "biuf"  # bool, signed, unsigned, float: everything np.save stores without pickling


def check_pool(pool: str) -> str:
    if not isinstance(pool, str) or _POOL_NAME.fullmatch(pool) is None:
        raise InvalidInput(
            f"pool name {pool!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return pool


def check_name(what: str, value: str) -> str:
    """A required free-text field (annotator, model name, idempotency key): non-empty, at most 256 chars."""
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise InvalidInput(f"{what} must be a non-empty string of at most 256 characters")
    return value


def check_image_pixels(pixels: object) -> np.ndarray:
    """pixels: (H, W) or (H, W, C), H, W, C >= 1, bool/int/uint/float. Returns it as an ndarray."""
    if not isinstance(pixels, np.ndarray):
        raise InvalidInput(f"image pixels must be a numpy array, got {type(pixels).__name__}")
    if pixels.ndim not in (2, 3) or pixels.size == 0:
        raise InvalidInput(
            f"image pixels have shape {pixels.shape}: send (H, W) or (H, W, C) with channels last, none empty"
        )
    if pixels.dtype.kind not in _PIXEL_KINDS:
        raise InvalidInput(f"image pixels have dtype {pixels.dtype}: send a bool, integer or float array")
    return pixels


MAX_NAME_CHARS = 1024


def check_image_name(name: object) -> str:
    """An image's name (file name or UID): a string of at most 1024 characters, no NUL; empty for none."""
    if name is None:
        return ""
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise InvalidInput(f"image name must be a string of at most {MAX_NAME_CHARS} characters without NUL")
    return name


def check_group_level(level: str) -> GroupLevel:
    if level == "series":
        return "series"
    if level == "study":
        return "study"
    raise InvalidInput(f"group level {level!r} is not known: use 'series' or 'study'")


def check_mask(mask: object, height: int, width: int) -> np.ndarray:
    """mask: (height, width) bool or integer, values 0-255. Returns a uint8 (height, width) copy."""
    if not isinstance(mask, np.ndarray):
        raise InvalidInput(f"the mask must be a numpy array, got {type(mask).__name__}")
    if mask.shape != (height, width):
        raise InvalidInput(
            f"mask shape {mask.shape} does not match the image's (H, W) = {(height, width)}: "
            "resample the mask to the image's size"
        )
    if mask.dtype.kind == "b":
        return mask.astype(np.uint8)
    if mask.dtype.kind not in "iu":
        raise InvalidInput(f"mask dtype {mask.dtype} is not accepted: send bool or uint8 class indices")
    if mask.size and (int(mask.min()) < 0 or int(mask.max()) > 255):
        raise InvalidInput(
            f"mask values span {int(mask.min())}..{int(mask.max())}: class indices must be 0-255 (uint8)"
        )
    return mask.astype(np.uint8)


def check_source(source: str) -> LabelSource:
    if source == "human":
        return "human"
    if source == "pseudo":
        return "pseudo"
    raise InvalidInput(f"label source {source!r} is not known: use 'human' or 'pseudo'")


def check_sources(sources: Collection[str]) -> frozenset[str]:
    chosen = frozenset(sources)
    if not chosen or not chosen <= LABEL_SOURCES:
        raise InvalidInput(f"label sources {sorted(chosen)} are not valid: use a non-empty subset of human, pseudo")
    return chosen


def check_score_row(row: ScoreRow) -> None:
    """Every number finite (SQL stores NaN as NULL), components and version non-negative, descriptor 1-D."""
    check_name("model_name", row.model_name)
    for name in (
        "entropy",
        "mutual_information",
        "variance",
        "confidence",
        "boundary_length",
        "foreground_fraction",
    ):
        value = getattr(row, name)
        try:
            finite = math.isfinite(float(value))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise InvalidInput(
                f"score {name}={value!r} for image {row.image_id} is not a finite number: "
                "check the model output for NaN/inf before storing scores"
            )
    if row.model_version < 0 or row.components < 0:
        raise InvalidInput(f"score for image {row.image_id} has a negative model_version or components count")
    if row.descriptor is not None and (
        not isinstance(row.descriptor, np.ndarray) or row.descriptor.ndim != 1 or row.descriptor.dtype.kind != "f"
    ):
        raise InvalidInput(f"descriptor for image {row.image_id} must be a 1-D float array (D,) or None")
    if row.mask is not None:
        bits = row.mask.bits
        if (
            not isinstance(bits, np.ndarray)
            or bits.dtype != np.uint8
            or bits.ndim != 2
            or bits.shape[0] < 1
            or row.mask.width < 1
            or bits.shape[1] != -(-row.mask.width // 8)
        ):
            raise InvalidInput(f"mask for image {row.image_id} must be PackedMask.of(a non-empty 2-D mask), or None")


def check_lease_request(annotator: str, k: int, seconds: float) -> None:
    check_name("annotator", annotator)
    if k < 0:
        raise InvalidInput(f"k={k} leases requested: ask for 0 or more")
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"lease length {seconds} s is not valid: use a positive number of seconds")


def check_label_request(
    annotator: str, source: str, seconds_spent: float, idempotency_key: str | None, model_version: int | None
) -> LabelSource:
    """Checks submit_label's keyword arguments; returns the source."""
    check_name("annotator", annotator)
    chosen = check_source(source)
    if not math.isfinite(seconds_spent) or seconds_spent < 0:
        raise InvalidInput(f"seconds_spent={seconds_spent} is not valid: send the annotation time, 0 or more")
    if idempotency_key is not None:
        check_name("idempotency_key", idempotency_key)
    if chosen == "pseudo" and model_version is None:
        raise InvalidInput("pseudo labels need model_version: the version of the model that produced the mask")
    if model_version is not None and model_version < 0:
        raise InvalidInput(f"model_version={model_version} is negative: send the model's version number")
    return chosen


def check_claim_request(limit: int, lease_seconds: float, worker: str) -> None:
    check_name("worker", worker)
    if limit < 0:
        raise InvalidInput(f"limit={limit} ids requested: ask for 0 or more")
    if not math.isfinite(lease_seconds) or lease_seconds <= 0:
        raise InvalidInput(f"claim length {lease_seconds} s is not valid: use a positive number of seconds")


def require_registered(pool: str, wanted: Iterable[str], found: set[str], why: str) -> None:
    """Raises NotFound naming how many of `wanted` are not in `found` (the pool's ids) and the first one."""
    missing = [image_id for image_id in wanted if image_id not in found]
    if missing:
        raise NotFound(f"{len(missing)} image id(s) are not in pool {pool!r} (first: {missing[0]}): {why}")
