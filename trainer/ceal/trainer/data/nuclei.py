"""A second synthetic family, unlike the lesions: grayscale fluorescence-microscopy-like cell nuclei.

Where a lesion image is one large coloured blob on textured skin, a nuclei image is many small bright
objects on a dark, unevenly lit background: 3–60 nuclei of varied size, shape and brightness (ellipses with a
wobbling outline and a chromatin texture), some touching in clusters, with out-of-focus blur and shot noise.
About a third are hard cases: dim (low signal-to-noise), dense clusters, or bright debris that is not a
nucleus (small specks and fibres, never in the mask). The mask is the union of the nuclei. Images are gray,
stored as three equal channels so the same U-Net reads them.

A case is a pure function of its generator (`case_rng(seed, index)` per case, as for the lesions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["NUCLEI_KINDS", "NucleiCase", "make_nuclei_case"]

# kind → (odds, nuclei count range, brightness range over the background, debris)
NUCLEI_KINDS: Final[dict[str, tuple[float, tuple[int, int], tuple[float, float], bool]]] = {
    "typical": (0.65, (4, 25), (60.0, 160.0), False),
    "dim": (0.12, (4, 20), (12.0, 35.0), False),
    "dense": (0.12, (30, 60), (50.0, 150.0), False),
    "debris": (0.11, (3, 15), (50.0, 150.0), True),
}
_NAMES: Final = tuple(NUCLEI_KINDS)
_ODDS: Final = np.array([NUCLEI_KINDS[k][0] for k in _NAMES])


@dataclass(frozen=True)
class NucleiCase:
    """image uint8 (H, W, 3) (gray), mask uint8 (H, W) 0/255, kind, nuclei: how many were drawn."""

    image: NDArray[np.uint8]
    mask: NDArray[np.uint8]
    kind: str
    nuclei: int


def _nucleus(
    rng: np.random.Generator, yy: NDArray[np.float32], xx: NDArray[np.float32], radius: float
) -> NDArray[np.floating[Any]]:
    """Signed inside-ness (> 0 inside) of one wobbly ellipse at a random place, over the pixel grid."""
    h, w = yy.shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ratio, angle = rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ratio
    theta = np.arctan2(v, u)
    wobble = 1 + sum(rng.uniform(0, 0.08) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    out: NDArray[np.floating[Any]] = radius * wobble - np.hypot(u, v)  # float32, as the grid
    return out


def make_nuclei_case(rng: np.random.Generator, height: int, width: int, kind: str | None = None) -> NucleiCase:
    """One nuclei image of height × width pixels; its kind is drawn from NUCLEI_KINDS unless given."""
    if kind is None:
        kind = _NAMES[int(rng.choice(len(_NAMES), p=_ODDS))]
    if kind not in NUCLEI_KINDS:
        raise ValueError(f"unknown nuclei kind {kind!r}; choose one of {', '.join(_NAMES)}")
    _, counts, brightness, debris = NUCLEI_KINDS[kind]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    side = min(height, width)
    background = rng.uniform(8, 40)
    # uneven illumination: a smooth random field
    light = ndimage.gaussian_filter(rng.normal(0, 1, (height, width)), side / 4)
    light = 1 + 0.35 * light / (np.abs(light).max() + 1e-6)
    img = np.full((height, width), background, np.float32)
    mask = np.zeros((height, width), bool)
    count = int(rng.integers(counts[0], counts[1] + 1))
    for _ in range(count):
        inside = _nucleus(rng, yy, xx, side * float(np.exp(rng.uniform(np.log(0.035), np.log(0.11)))))
        body = inside > 0
        mask |= body
        level = rng.uniform(*brightness)
        texture = 1 + 0.25 * ndimage.gaussian_filter(rng.normal(0, 1, (height, width)), 0.8)
        img = np.where(body, np.maximum(img, background + level * texture * np.clip(inside / 1.5, 0.3, 1)), img)
    if debris:
        for _ in range(int(rng.integers(3, 12))):
            y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
            if rng.random() < 0.5:  # a speck
                img[max(0, y - 1) : y + 1, max(0, x - 1) : x + 1] += rng.uniform(80, 180)
            else:  # a thin fibre
                length, angle = rng.uniform(0.2, 0.5) * side, rng.uniform(0, np.pi)
                t = np.linspace(0, length, int(length) * 2)
                ys = np.clip((y + t * np.sin(angle)).astype(int), 0, height - 1)
                xs = np.clip((x + t * np.cos(angle)).astype(int), 0, width - 1)
                img[ys, xs] += rng.uniform(40, 120)
    img = ndimage.gaussian_filter(img * light, rng.uniform(0.4, 1.6))  # optics, some out of focus
    img = rng.poisson(np.clip(img, 0, None) / 2.0).astype(np.float32) * 2.0 + rng.normal(0, 2.0, img.shape)
    gray = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return NucleiCase(np.repeat(gray[:, :, None], 3, axis=2), (mask * np.uint8(255)).astype(np.uint8), kind, count)
