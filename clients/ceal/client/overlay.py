"""PNG overlays a reader can trust: the mask as an outline over the image, the uncertainty on one absolute scale.

`ceal predict` and the demo write these. The heat map is predictive entropy from 0 to log(C) nats (the most
a C-class entropy can be), never scaled to its own image's maximum, so a confident image looks calm beside an
uncertain one; a colour bar with its numbers sits to the right. The colour ramp is the console's
(`ceal/console/static/js/raster.js`, RAMP).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from ceal.client.results import Prediction

__all__ = ["RAMP", "heat_colours", "outline", "overlay"]

RAMP: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (35, 70, 210)),
    (0.35, (140, 50, 220)),
    (0.65, (235, 40, 140)),
    (1.0, (255, 30, 30)),
)
OUTLINE = np.array([0, 220, 255], np.float32)  # the console's class-1 colour
MIN_HEIGHT = 256  # small images are enlarged (nearest neighbour) so outline and legend stay legible
BAR_WIDTH = 96


def heat_colours(t: np.ndarray) -> np.ndarray:
    """RGB float32 (..., 3) in 0-255 of t in [0, 1] on RAMP."""
    stops = np.array([s for s, _ in RAMP])
    colours = np.array([c for _, c in RAMP], np.float32)
    u = np.clip(t, 0.0, 1.0)
    return np.stack([np.interp(u, stops, colours[:, k]) for k in range(3)], axis=-1).astype(np.float32)


def outline(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): foreground pixels with a 4-neighbour of another value (the image border counts as one)."""
    m = np.pad(mask, 1, mode="constant", constant_values=0)
    core = m[1:-1, 1:-1]
    same = (m[:-2, 1:-1] == core) & (m[2:, 1:-1] == core) & (m[1:-1, :-2] == core) & (m[1:-1, 2:] == core)
    return np.asarray((core != 0) & ~same, dtype=bool)


def _base_rgb(image: np.ndarray) -> np.ndarray:
    """The image as float32 RGB (H, W, 3) in 0-255; other dtypes are stretched over their own range."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.dtype != np.uint8:
        lo, hi = float(np.min(img)), float(np.max(img))
        img = ((img.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
    rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
    return rgb.astype(np.float32)


def _enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    return array if factor == 1 else np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def _colour_bar(height: int, vmax: float) -> np.ndarray:
    """uint8 RGB (height, BAR_WIDTH, 3): the ramp bottom (0) to top (vmax nats), labelled."""
    bar = PILImage.new("RGB", (BAR_WIDTH, height), (21, 23, 26))
    top, bottom, left, width = 14, height - 14, 8, 14
    t = np.linspace(1.0, 0.0, bottom - top)[:, None].repeat(width, axis=1)
    bar.paste(PILImage.fromarray(heat_colours(t).astype(np.uint8)), (left, top))
    draw = ImageDraw.Draw(bar)
    for frac in (0.0, 0.5, 1.0):
        y = round(bottom - frac * (bottom - top - 1)) - 1
        draw.line([(left + width, y), (left + width + 4, y)], fill=(230, 232, 235))
        draw.text((left + width + 7, y - 6), f"{frac * vmax:.2f}", fill=(230, 232, 235))
    draw.text((left + width + 7, top + 12), "nats", fill=(154, 161, 169))
    draw.text((left + width + 7, bottom - 18), "certain", fill=(154, 161, 169))
    return np.asarray(bar)


def overlay(image: np.ndarray, p: Prediction) -> tuple[np.ndarray, np.ndarray]:
    """(mask outline over the image, uncertainty heat map with its colour bar), each uint8 RGB.

    Both are the image enlarged to at least 256 pixels high; the second is BAR_WIDTH wider (the bar).
    Uncertainty: predictive entropy on 0 … log(C) nats, C from the probability map's shape (2 for binary).
    """
    base = _base_rgb(image)
    h, w = base.shape[:2]
    factor = max(1, math.ceil(MIN_HEIGHT / h))
    big = _enlarge(base, factor)
    mask = p.label_map if p.label_map is not None else np.zeros((h, w), np.uint8)
    edge = _enlarge(outline(mask), factor)
    over = big.copy()
    over[edge] = OUTLINE
    classes = p.probability.shape[0] if p.probability is not None and p.probability.ndim == 3 else 2
    vmax = math.log(max(classes, 2))
    entropy = p.entropy if p.entropy is not None else np.zeros((h, w), np.float32)
    t = _enlarge(np.clip(entropy / vmax, 0.0, 1.0), factor)[..., None]
    alpha = 0.8 * t  # as the console: calm pixels stay clear, the image shows through moderate uncertainty
    heat = (1 - alpha) * (0.8 * big) + alpha * heat_colours(t[..., 0])
    unc = np.concatenate([heat.astype(np.uint8), _colour_bar(heat.shape[0], vmax)], axis=1)
    return over.astype(np.uint8), unc
