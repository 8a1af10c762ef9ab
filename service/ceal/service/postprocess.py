"""Clean-up of predicted label maps and the shape measures of the annotation cost model (scipy.ndimage).

Label maps are ``uint8 (H, W)``: 0 is background, every non-zero value is a class, handled one at a time.
Connectivity: a class region is 8-connected (diagonal neighbours join), so the background that it encloses
is 4-connected, which is also what ``scipy.ndimage.binary_fill_holes`` assumes.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ceal.service.errors import InvalidInput

__all__ = ["boundary_length", "component_count", "fill_holes", "keep_largest_component"]

_EIGHT_CONNECTED: Final = np.ones((3, 3), dtype=bool)
_FOUR_CONNECTED: Final = ndimage.generate_binary_structure(2, 1)


def _check_label_map(label_map: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    array = np.asarray(label_map)
    if array.ndim != 2 or array.size == 0:
        raise InvalidInput(f"label_map must be a non-empty 2-D array (H, W); got shape {array.shape}")
    if array.dtype != np.uint8:
        raise InvalidInput(f"label_map must be uint8 class indices; got dtype {array.dtype}")
    return array


def _check_mask(mask: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise InvalidInput(f"mask must be a non-empty 2-D array (H, W); got shape {array.shape}")
    if array.dtype != np.bool_:
        raise InvalidInput(f"mask must be boolean; got dtype {array.dtype} (compare with a class first)")
    return array


def _classes(label_map: npt.NDArray[np.uint8]) -> list[int]:
    return [int(c) for c in np.unique(label_map) if c != 0]


def keep_largest_component(label_map: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """For each non-zero class keep only its largest 8-connected component; the rest becomes background 0.

    ``label_map: uint8 (H, W)`` -> a new ``uint8 (H, W)``. On a tie the component met first in row-major
    order is kept, so the result does not depend on anything but the input.
    """
    labels = _check_label_map(label_map)
    result = labels.copy()
    for value in _classes(labels):
        components, count = ndimage.label(labels == value, structure=_EIGHT_CONNECTED)
        if count <= 1:
            continue
        sizes = np.bincount(components.ravel())[1:]  # (count,); index 0 is everything else
        largest = int(np.argmax(sizes)) + 1  # argmax returns the first maximum: the row-major tie-break
        result[(components != 0) & (components != largest)] = 0
    return result


def fill_holes(label_map: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Fill, per class, the background holes that the class encloses.

    ``label_map: uint8 (H, W)`` -> a new ``uint8 (H, W)``. Only background (0) pixels change: a 0 pixel
    inside ``binary_fill_holes(label_map == c)`` takes class c; when several classes enclose it (nested
    rings) the innermost one wins, i.e. the class whose filled region is smallest. Other classes inside a
    class are kept as they are.
    """
    labels = _check_label_map(label_map)
    background = labels == 0
    filled = []
    for value in _classes(labels):
        region = np.asarray(ndimage.binary_fill_holes(labels == value), dtype=bool)
        filled.append((int(region.sum()), value, region))
    result = labels.copy()
    # Largest region first, so that an enclosed (smaller) region overwrites the one around it.
    for _, value, region in sorted(filled, key=lambda item: (-item[0], item[1])):
        result[region & background] = value
    return result


def boundary_length(mask: npt.ArrayLike) -> int:
    """The number of foreground pixels of ``mask: bool (H, W)`` with a 4-neighbour in the background.

    Pixels on the image edge count as boundary (outside the image is background), so a full mask has the
    image's perimeter as its boundary. This is the length, in pixels, that an annotator traces.
    """
    foreground = _check_mask(mask)
    interior = ndimage.binary_erosion(foreground, structure=_FOUR_CONNECTED, border_value=0)
    return int(np.count_nonzero(foreground & ~interior))


def component_count(mask: npt.ArrayLike) -> int:
    """The number of 8-connected foreground components of ``mask: bool (H, W)``."""
    _, count = ndimage.label(_check_mask(mask), structure=_EIGHT_CONNECTED)
    return int(count)
