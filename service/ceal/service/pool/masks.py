"""Label masks checked against the model's classes before they are stored.

A binary model (a sigmoid head, or softmax over background + one class) takes 0 for background and 1 for the
foreground; masks saved the usual 8-bit way, 0 and 255, are accepted too and stored as 0/1, so training never
sees 255 as a class. A C-class model takes 0..C-1. Anything else is refused with the values found, so a
mask drawn for another model, or an anti-aliased PNG, never becomes a silent training error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ceal.service.errors import InvalidInput

__all__ = ["BINARY_WHITE", "mask_values", "normalise_mask"]

BINARY_WHITE = 255  # the 8-bit convention for "foreground" in a binary mask PNG
_SHOWN = 8


def mask_values(mask: np.ndarray) -> list[int]:
    """The distinct values of a uint8 (H, W) mask, ascending."""
    counts = np.bincount(mask.ravel(), minlength=256)
    return [int(v) for v in np.flatnonzero(counts)]


def _listed(values: Sequence[int]) -> str:
    shown = ", ".join(str(v) for v in values[:_SHOWN])
    return shown + (f", ... ({len(values)} values)" if len(values) > _SHOWN else "")


def normalise_mask(mask: np.ndarray, classes: int, class_names: Sequence[str] = ()) -> np.ndarray:
    """mask: uint8 or bool (H, W); classes: the model's classes, background included (2 for binary).

    Returns uint8 (H, W) class indices in 0..classes-1: the mask itself, or for a binary model a 0/255 mask
    as 0/1. Raises InvalidInput naming the values found and what to send.
    """
    mask8 = mask.astype(np.uint8) if mask.dtype == np.bool_ else mask
    if mask8.dtype != np.uint8:
        raise InvalidInput(f"mask dtype must be uint8 or bool (class indices), not {mask.dtype}")
    found = mask_values(mask8)
    if not found or found[-1] < classes:
        return mask8
    names = f" ({', '.join(class_names)})" if len(class_names) == classes else ""
    if classes == 2:
        if set(found) <= {0, BINARY_WHITE}:
            return np.asarray(mask8 == BINARY_WHITE, dtype=np.uint8)
        wrong = [v for v in found if v > 1]
        raise InvalidInput(
            f"mask values {_listed(found)} do not fit the model's 2 classes{names} ({_listed(wrong)} neither 0 "
            f"nor 1): send 0 for background and 1 "
            f"for the foreground (0/{BINARY_WHITE} is accepted too); no other value, so no anti-aliased edges"
        )
    wrong = [v for v in found if v >= classes]
    raise InvalidInput(
        f"mask values {_listed(found)} include {_listed(wrong)}, outside the model's {classes} classes{names}: "
        f"send class indices 0..{classes - 1}"
    )
