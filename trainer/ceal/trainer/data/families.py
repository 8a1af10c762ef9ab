"""The synthetic families by name: "lesion" (dermoscopy-like, `synth`) and "nuclei" (fluorescence-like cell
nuclei, `nuclei`). `ceal data synth --family` writes one to disk; the simulation can draw one in memory."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from tqdm import tqdm

from ceal.trainer.data.nuclei import make_nuclei_case
from ceal.trainer.data.synth import case_rng, isic_id, make_case, write_isic

__all__ = ["FAMILIES", "family_arrays", "family_case", "write_family"]

FAMILIES: Final = ("lesion", "nuclei")


def _check(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown synthetic family {family!r}; choose one of {', '.join(FAMILIES)}")


def family_case(family: str, seed: int, index: int, height: int, width: int) -> tuple[NDArray[np.uint8], ...]:
    """(image uint8 (H, W, 3), mask uint8 (H, W) 0/255, kind as a 0-d str array) of case `index`."""
    _check(family)
    rng = case_rng(seed, index)
    if family == "lesion":
        case = make_case(rng, height, width)
        return case.image, case.mask, np.array(case.attributes.kind)
    nuclei = make_nuclei_case(rng, height, width)
    return nuclei.image, nuclei.mask, np.array(nuclei.kind)


def family_arrays(
    family: str, n: int, seed: int, height: int, width: int
) -> tuple[list[str], NDArray[np.uint8], NDArray[np.uint8]]:
    """n cases of a family at height × width: ids (as written to disk), images (n, H, W, 3), masks (n, H, W)
    as class indices (0/1)."""
    _check(family)
    images = np.zeros((n, height, width, 3), np.uint8)
    masks = np.zeros((n, height, width), np.uint8)
    for i in range(n):
        image, mask, _ = family_case(family, seed, i, height, width)
        images[i], masks[i] = image, (mask > 0)
    return [isic_id(i) for i in range(n)], images, masks


def write_family(
    family: str, out: Path, n: int, seed: int, height: int, width: int, *, progress: bool = True
) -> list[str]:
    """Write n cases of a family in the ISIC 2017 layout (images/*.jpg or *.png, masks/*_segmentation.png,
    cases.csv); lesions as `write_isic` does, nuclei as lossless PNG with id, kind and nuclei fraction."""
    _check(family)
    if family == "lesion":
        return write_isic(out, n, seed, height, width, progress=progress)
    if n < 0:
        raise ValueError(f"n must be ≥ 0 (the number of cases to write); got {n}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    ids = []
    with (out / "cases.csv").open("w", newline="", encoding="utf-8") as table:
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["id", "kind", "fraction"])
        for i in tqdm(range(n), desc="synth", unit="img", file=sys.stderr, disable=not progress):
            image, mask, kind = family_case(family, seed, i, height, width)
            case_id = isic_id(i)
            Image.fromarray(image).save(out / "images" / f"{case_id}.png")
            Image.fromarray(mask).save(out / "masks" / f"{case_id}_segmentation.png")
            writer.writerow([case_id, str(kind), f"{(mask > 0).mean():.4f}"])
            ids.append(case_id)
    return ids
