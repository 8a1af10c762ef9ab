"""Layers of a synthetic dermoscopy image: skin, lesion shape and pigment, hair, marks, lighting.

Every function draws from the generator it is given, in a fixed order, so a case is a pure function of the
generator's state. Images are float32 (H, W, 3) in 0..255 (not yet clipped) until `synth.make_case` rounds
them; distances are in pixels; coordinates are pixel centres (row 0 is y = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

Float = NDArray[np.float32]

# RGB of the pigments: the first four are lesion base colours, all six may appear as blotches.
PIGMENTS = np.array(
    [
        [176, 128, 92],  # light brown
        [138, 88, 60],  # brown
        [92, 58, 42],  # dark brown
        [52, 36, 32],  # black-brown
        [160, 92, 82],  # red-brown
        [104, 112, 134],  # blue-grey (regression / dermal pigment)
    ],
    dtype=np.float32,
)
_BASE_PIGMENTS = 4
_LIGHT_SKIN = np.array([236, 200, 180], dtype=np.float32)
_DARK_SKIN = np.array([120, 80, 60], dtype=np.float32)
_HAIR = np.array([40, 28, 22], dtype=np.float32)
_INK = (100, 60, 150)


def _interp_matrix(n: int, cells: int) -> Float:
    """(n, cells) matrix that smoothly interpolates `cells` grid values onto n pixels."""
    pos = np.linspace(0.0, cells - 1.0, n)
    i0 = np.minimum(np.floor(pos).astype(np.int64), cells - 2)
    f = pos - i0
    f = f * f * (3.0 - 2.0 * f)  # smoothstep: no creases at the grid lines
    out = np.zeros((n, cells), dtype=np.float32)
    rows = np.arange(n)
    out[rows, i0] = 1.0 - f
    out[rows, i0 + 1] = f
    return out


def smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> Float:
    """(H, W) smooth noise, about N(0, 1) at the grid points, varying over ~max(H, W) / cells pixels."""
    cells = max(int(cells), 1) + 1
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    field = _interp_matrix(height, cells) @ grid @ _interp_matrix(width, cells).T
    out: Float = field.astype(np.float32, copy=False)
    return out


def sigmoid(x: Float) -> Float:
    out: Float = (1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))).astype(np.float32)
    return out


def skin(rng: np.random.Generator, height: int, width: int) -> tuple[Float, float]:
    """Skin background (H, W, 3) and its tone, 0 light … 1 dark."""
    tone = float(rng.beta(1.6, 2.4))  # lighter skins are commoner, as in the ISIC archive
    base = (_LIGHT_SKIN + tone * (_DARK_SKIN - _LIGHT_SKIN)) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    coarse = smooth_field(rng, height, width, int(rng.integers(2, 7))) * rng.uniform(3.0, 10.0)
    fine = smooth_field(rng, height, width, max(height, width) // 6) * rng.uniform(1.0, 4.0)
    redness = sigmoid(smooth_field(rng, height, width, 3) * 2.0 - 1.0) * rng.uniform(0.0, 0.12)
    img = base[None, None, :] + (coarse + fine)[..., None]
    img *= 1.0 - redness[..., None] * np.array([0.0, 0.6, 0.5], dtype=np.float32)
    return img.astype(np.float32), tone


@dataclass(frozen=True)
class Lesion:
    """One lesion: centre (px), mean radius (px), axis ratio ≥ 1, angle (rad), radial profile."""

    cy: float
    cx: float
    radius: float
    aspect: float
    angle: float
    irregularity: float
    profile: Float  # (256,) boundary radius / mean radius at angles -π … π, in [0.6, 1.4]

    @property
    def minor(self) -> float:
        return self.radius / self.aspect


def _profile(rng: np.random.Generator, irregularity: float) -> Float:
    """Radial boundary: 1 + A·noise(φ); low harmonics for smooth lesions, a flat spectrum for ragged ones."""
    phi = np.linspace(-np.pi, np.pi, 256, endpoint=False)
    k = np.arange(2, 25, dtype=np.float64)
    amps = k ** -(2.2 - 1.4 * irregularity) * rng.standard_normal(k.size)
    phases = rng.uniform(0.0, 2.0 * np.pi, k.size)
    noise = (amps[:, None] * np.cos(k[:, None] * phi[None, :] + phases[:, None])).sum(axis=0)
    noise /= max(float(np.abs(noise).max()), 1e-9)
    profile: Float = (1.0 + (0.04 + 0.36 * irregularity) * noise).astype(np.float32)
    return profile


def random_lesion(rng: np.random.Generator, height: int, width: int, area_fraction: float, at_border: bool) -> Lesion:
    """A lesion covering about `area_fraction` of the image, inside it or (at_border) cut by an edge."""
    radius = max(float(np.sqrt(area_fraction * height * width / np.pi)), 2.5)
    aspect = float(rng.uniform(1.0, 1.5))
    angle = float(rng.uniform(0.0, np.pi))
    irregularity = float(rng.beta(1.2, 1.8))
    minor = radius / aspect
    if at_border:
        # The profile is ≥ 0.6 and the ellipse holds a disc of `minor`, so a centre within 0.35·minor of
        # row/column 0 (or beyond it by ≤ 0.25·minor) puts lesion pixels on the edge and inside the image.
        edge = int(rng.integers(4))
        depth = float(rng.uniform(-0.25, 0.35)) * minor
        along = float(rng.uniform(0.2, 0.8))
        cy, cx = along * (height - 1), along * (width - 1)
        if edge == 0:
            cy = depth
        elif edge == 1:
            cy = height - 1 - depth
        elif edge == 2:
            cx = depth
        else:
            cx = width - 1 - depth
    else:
        margin = 0.5 * radius
        cy = float(rng.uniform(min(margin, height / 2), max(height - margin, height / 2)))
        cx = float(rng.uniform(min(margin, width / 2), max(width - margin, width / 2)))
    return Lesion(cy, cx, radius, aspect, angle, irregularity, _profile(rng, irregularity))


def inside_distance(lesion: Lesion, height: int, width: int) -> Float:
    """(H, W) approximate distance to the lesion boundary in px: positive inside, negative outside."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cos, sin = np.cos(lesion.angle), np.sin(lesion.angle)
    u = ((x - lesion.cx) * cos + (y - lesion.cy) * sin) / (lesion.radius * lesion.aspect)
    v = (-(x - lesion.cx) * sin + (y - lesion.cy) * cos) / lesion.minor
    rho = np.sqrt(u * u + v * v)
    phi = np.arctan2(v, u)
    grid = np.linspace(-np.pi, np.pi, lesion.profile.size, endpoint=False)
    boundary = np.interp(phi, grid, lesion.profile, period=2.0 * np.pi).astype(np.float32)
    out: Float = ((boundary - rho) * lesion.radius).astype(np.float32)
    return out


def paint_lesion(
    rng: np.random.Generator, img: Float, lesion: Lesion, dist: Float, *, contrast: float, softness: float
) -> int:
    """Blend pigment into `img` in place; return how many blotches of other colours it carries."""
    height, width = dist.shape
    colour = PIGMENTS[rng.integers(_BASE_PIGMENTS)] * np.float32(rng.uniform(0.85, 1.1))
    cells = int(np.clip(max(height, width) / max(lesion.radius / 2.0, 2.0), 4, 64))
    texture = 1.0 + 0.12 * smooth_field(rng, height, width, cells)  # pigment network, roughly
    layer = colour[None, None, :] * texture[..., None]
    blotches = int(rng.choice(5, p=[0.3, 0.3, 0.2, 0.12, 0.08]))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(blotches):
        r, a = lesion.minor * 0.6 * np.sqrt(rng.uniform()), rng.uniform(0.0, 2.0 * np.pi)
        by, bx = lesion.cy + r * np.sin(a), lesion.cx + r * np.cos(a)
        sigma = lesion.radius * rng.uniform(0.15, 0.45)
        weight = rng.uniform(0.5, 0.9) * np.exp(-((y - by) ** 2 + (x - bx) ** 2) / (2.0 * sigma * sigma))
        layer += (PIGMENTS[rng.integers(len(PIGMENTS))] - layer) * weight[..., None]
    # Opaque in the middle, fading over `softness` px at the boundary, so the true edge is at alpha/2.
    centre = 0.8 + 0.2 * np.clip(dist / (0.5 * lesion.radius), 0.0, 1.0)
    alpha = contrast * sigmoid(dist / softness) * centre
    img += (layer - img) * alpha[..., None]
    return blotches


def draw_hairs(rng: np.random.Generator, img: Float, count: int, lesions: list[Lesion]) -> None:
    """Dark thin curved strokes; most cross a lesion. The mask is not touched."""
    height, width = img.shape[:2]
    if count == 0:
        return
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    diag = float(np.hypot(height, width))
    for _ in range(count):
        if lesions and rng.random() < 0.6:
            target = lesions[int(rng.integers(len(lesions)))]
            ay = target.cy + rng.uniform(-1.0, 1.0) * target.radius
            ax = target.cx + rng.uniform(-1.0, 1.0) * target.radius
        else:
            ay, ax = rng.uniform(0, height), rng.uniform(0, width)
        theta, length, bend = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.8) * diag, rng.normal(0, 1.0)
        heading = theta + bend * np.linspace(-0.5, 0.5, 24)
        steps = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], axis=1) * length / 24, axis=0)
        steps -= steps[12]
        points = [(float(ax + dx), float(ay + dy)) for dx, dy in steps]
        stroke = max(1, round(rng.uniform(0.6, 1.5) * min(height, width) / 150))
        draw.line(points, fill=int(rng.integers(150, 256)), width=stroke, joint="curve")
    alpha = np.asarray(layer.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32) / 255.0
    img += (_HAIR * np.float32(rng.uniform(0.5, 1.5)) - img) * alpha[..., None]


def _ruler(rng: np.random.Generator, length: int, depth: int) -> Image.Image:
    """RGBA ruler strip along the top of a (depth, length) image, pointing inward."""
    strip = Image.new("RGBA", (length, depth), (0, 0, 0, 0))
    draw = ImageDraw.Draw(strip)
    band = max(3, int(depth * rng.uniform(0.4, 0.8)))
    draw.rectangle((0, 0, length, band), fill=(235, 235, 225, int(rng.integers(90, 200))))
    pitch = max(3, round(length / rng.uniform(20, 35)))
    for i, x in enumerate(range(int(rng.integers(pitch)), length, pitch)):
        tick = band if i % 5 == 0 else band // 2
        draw.line((x, 0, x, tick), fill=(25, 25, 25, 230), width=1)
    draw.line((0, band, length, band), fill=(25, 25, 25, 230), width=1)
    return strip


def draw_marks(rng: np.random.Generator, img: Float, lesions: list[Lesion]) -> str:
    """A ruler along one edge and/or purple ink marks around the lesion; returns which were drawn."""
    height, width = img.shape[:2]
    which = ("ruler", "ink", "ruler+ink")[int(rng.integers(3))]
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if "ruler" in which:
        depth = max(4, int(min(height, width) * rng.uniform(0.08, 0.15)))
        edge = int(rng.integers(4))
        if edge < 2:
            strip = _ruler(rng, width, depth)
            if edge == 1:
                strip = strip.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            overlay.alpha_composite(strip, (0, 0 if edge == 0 else height - depth))
        else:
            strip = _ruler(rng, height, depth).transpose(Image.Transpose.ROTATE_90)
            if edge == 3:
                strip = strip.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            overlay.alpha_composite(strip, (0 if edge == 2 else width - depth, 0))
    if "ink" in which:
        draw = ImageDraw.Draw(overlay)
        target = lesions[0]
        stroke = max(2, round(min(height, width) / 80))
        for _ in range(int(rng.integers(1, 5))):
            r = target.radius * rng.uniform(1.3, 1.8)
            box = (target.cx - r, target.cy - r, target.cx + r, target.cy + r)
            start = float(rng.uniform(0, 360))
            draw.arc(box, start, start + float(rng.uniform(10, 70)), fill=(*_INK, 230), width=stroke)
    rgba = np.asarray(overlay, dtype=np.float32)
    alpha = rgba[..., 3:] / 255.0
    img += (rgba[..., :3] - img) * alpha
    return which


def illuminate(rng: np.random.Generator, img: Float) -> float:
    """Vignetting, exposure and white balance, plus sometimes the dermoscope's dark round frame.

    Returns the vignetting strength: 0 flat … 0.45 (corners 45 % darker).
    """
    height, width = img.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cy = (height - 1) / 2 * (1 + rng.uniform(-0.15, 0.15))
    cx = (width - 1) / 2 * (1 + rng.uniform(-0.15, 0.15))
    half_diag = float(np.hypot(height, width)) / 2
    r = np.sqrt((y - cy) ** 2 + (x - cx) ** 2) / half_diag
    strength = float(rng.uniform(0.0, 0.45))
    light = 1.0 - strength * r * r
    if rng.random() < 0.12:
        light *= sigmoid((rng.uniform(0.85, 1.0) - r) * half_diag / rng.uniform(1.0, 4.0))
    gain = rng.uniform(0.85, 1.1) * rng.uniform(0.94, 1.06, 3)
    img *= light[..., None] * gain.astype(np.float32)
    return strength
