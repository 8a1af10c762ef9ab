"""Synthetic dermoscopy-like lesions with true masks, written in the ISIC 2017 folder layout.

Cases are heterogeneous on purpose, so that Monte-Carlo-dropout uncertainty has something to find: lesion
size (tiny to large), boundary (smooth ellipse to ragged), contrast, colour variegation, hair, several
lesions, skin tone and lighting, and about 10 % hard cases (faint, cut by the border, heavy hair, ruler or
ink marks). The kinds and their odds are the one table `CASE_KINDS`. Hair, marks and lighting change the
image, never the mask: the mask is where the lesion really is.

A case is a pure function of the generator it is given; `case_rng(seed, index)` gives each case of a data
set its own stream, so case i does not depend on how many cases came before it.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from tqdm import tqdm

from ceal.trainer.data import _synth_render as render

__all__ = [
    "CASE_KINDS",
    "CaseAttributes",
    "CaseKind",
    "SynthCase",
    "case_rng",
    "isic_id",
    "make_case",
    "write_isic",
]

MIN_SIDE = 16


@dataclass(frozen=True)
class CaseKind:
    """A kind of case: its odds and the ranges its lesions are drawn from (areas are image fractions)."""

    name: str
    probability: float
    lesions: tuple[int, int]  # inclusive
    area: tuple[float, float]  # per lesion, drawn log-uniformly
    contrast: tuple[float, float]  # pigment opacity
    softness: tuple[float, float]  # edge blur, px
    hair_chance: float
    hairs: tuple[int, int]  # inclusive, when there is hair
    at_border: bool = False
    marks: bool = False


CASE_KINDS: tuple[CaseKind, ...] = (
    # name          p      lesions  area            contrast      softness    hair  hairs
    CaseKind("typical", 0.80, (1, 1), (0.003, 0.45), (0.35, 1.0), (0.4, 2.5), 0.4, (1, 8)),
    CaseKind("multiple", 0.10, (2, 5), (0.002, 0.06), (0.35, 1.0), (0.4, 2.0), 0.4, (1, 8)),
    # Hard cases, about 10 % together.
    CaseKind("faint", 0.025, (1, 1), (0.02, 0.3), (0.08, 0.2), (2.0, 5.0), 0.4, (1, 8)),
    CaseKind("border", 0.025, (1, 1), (0.04, 0.3), (0.35, 1.0), (0.4, 2.5), 0.4, (1, 8), at_border=True),
    CaseKind("heavy_hair", 0.025, (1, 1), (0.01, 0.3), (0.35, 1.0), (0.4, 2.5), 1.0, (25, 60)),
    CaseKind("marks", 0.025, (1, 1), (0.01, 0.2), (0.35, 1.0), (0.4, 2.5), 0.4, (1, 8), marks=True),
)
_KINDS = {kind.name: kind for kind in CASE_KINDS}
_ODDS = np.array([kind.probability for kind in CASE_KINDS]) / sum(kind.probability for kind in CASE_KINDS)


@dataclass(frozen=True)
class CaseAttributes:
    """What made a case hard or easy; one row of cases.csv."""

    kind: str
    lesion_count: int
    lesion_fraction: float  # mask pixels / image pixels
    irregularity: float  # 0 smooth ellipse … 1 ragged boundary; mean over lesions
    contrast: float  # pigment opacity 0..1; mean over lesions
    edge_softness_px: float  # boundary blur; mean over lesions
    colours: int  # blotches of other pigments (variegation), all lesions
    hair_count: int
    marks: str  # "", "ruler", "ink" or "ruler+ink"
    skin_tone: float  # 0 light … 1 dark
    vignetting: float  # 0 flat … 0.45 (corners 45 % darker)
    touches_border: bool  # the mask reaches the first/last row or column
    luma_delta: float  # mean luminance outside the mask minus inside, as rendered (0..255)


@dataclass(frozen=True)
class SynthCase:
    """image: uint8 (H, W, 3) RGB; mask: uint8 (H, W) in {0, 255}."""

    image: NDArray[np.uint8]
    mask: NDArray[np.uint8]
    attributes: CaseAttributes


def case_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for case `index` of data set `seed` (both ≥ 0)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be ≥ 0; got seed={seed}, index={index}")
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def isic_id(index: int) -> str:
    """ISIC-style image id: 7 zero-padded digits, e.g. ISIC_0000042."""
    return f"ISIC_{index:07d}"


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def make_case(rng: np.random.Generator, height: int, width: int, kind: str | None = None) -> SynthCase:
    """One synthetic case of `height` × `width` pixels; its kind is drawn from CASE_KINDS unless given."""
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ValueError(f"height and width must be at least {MIN_SIDE} px; got {height}×{width}")
    if kind is None:
        spec = CASE_KINDS[int(rng.choice(len(CASE_KINDS), p=_ODDS))]
    elif kind in _KINDS:
        spec = _KINDS[kind]
    else:
        raise ValueError(f"unknown case kind {kind!r}; choose one of {', '.join(_KINDS)}")

    img, tone = render.skin(rng, height, width)
    mask = np.zeros((height, width), dtype=bool)
    lesions: list[render.Lesion] = []
    contrasts: list[float] = []
    softnesses: list[float] = []
    colours = 0
    for _ in range(int(rng.integers(spec.lesions[0], spec.lesions[1] + 1))):
        lesion = render.random_lesion(rng, height, width, _log_uniform(rng, spec.area), spec.at_border)
        dist = render.inside_distance(lesion, height, width)
        contrasts.append(float(rng.uniform(*spec.contrast)))
        softnesses.append(float(rng.uniform(*spec.softness)))
        colours += render.paint_lesion(rng, img, lesion, dist, contrast=contrasts[-1], softness=softnesses[-1])
        mask |= dist > 0
        lesions.append(lesion)

    hairs = int(rng.integers(spec.hairs[0], spec.hairs[1] + 1)) if rng.random() < spec.hair_chance else 0
    render.draw_hairs(rng, img, hairs, lesions)
    marks = render.draw_marks(rng, img, lesions) if spec.marks else ""
    vignetting = render.illuminate(rng, img)
    img += rng.normal(0.0, rng.uniform(1.0, 4.0), img.shape).astype(np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    outside = luma[~mask]
    inside = luma[mask]
    delta = float(outside.mean() - inside.mean()) if outside.size and inside.size else 0.0
    edges = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
    attributes = CaseAttributes(
        kind=spec.name,
        lesion_count=len(lesions),
        lesion_fraction=float(mask.mean()),
        irregularity=float(np.mean([lesion.irregularity for lesion in lesions])),
        contrast=float(np.mean(contrasts)),
        edge_softness_px=float(np.mean(softnesses)),
        colours=colours,
        hair_count=hairs,
        marks=marks,
        skin_tone=tone,
        vignetting=vignetting,
        touches_border=bool(edges),
        luma_delta=delta,
    )
    return SynthCase(image=image, mask=(mask * np.uint8(255)).astype(np.uint8), attributes=attributes)


def _csv_value(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_isic(
    out: Path, n: int, seed: int, height: int = 192, width: int = 256, *, progress: bool = True
) -> list[str]:
    """Write n cases in the ISIC 2017 layout under `out`; return their ids.

    out/images/ISIC_0000000.jpg (JPEG quality 95), out/masks/ISIC_0000000_segmentation.png (0/255),
    out/cases.csv (id and CaseAttributes). The same (n, seed, height, width) gives byte-identical files.
    """
    if n < 0:
        raise ValueError(f"n must be ≥ 0 (the number of cases to write); got {n}")
    images, masks = out / "images", out / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    names = ["id", *(field.name for field in dataclasses.fields(CaseAttributes))]
    ids: list[str] = []
    with (out / "cases.csv").open("w", newline="", encoding="utf-8") as table:
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(names)
        for index in tqdm(range(n), desc="synth", unit="img", file=sys.stderr, disable=not progress):
            case = make_case(case_rng(seed, index), height, width)
            case_id = isic_id(index)
            Image.fromarray(case.image).save(images / f"{case_id}.jpg", format="JPEG", quality=95)
            Image.fromarray(case.mask).save(masks / f"{case_id}_segmentation.png", format="PNG")
            row = dataclasses.astuple(case.attributes)
            writer.writerow([case_id, *(_csv_value(value) for value in row)])
            ids.append(case_id)
    return ids
