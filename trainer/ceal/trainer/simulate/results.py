"""One row of results.csv per finished (strategy, seed, round), and the CSV itself."""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .config import SimulationError

__all__ = ["COLUMNS", "ResultRow", "read_results", "write_results"]


@dataclass(frozen=True)
class ResultRow:
    """The model after `round` rounds of one arm, measured on the held-out test set.

    human_labels: images the oracle (a human) has labelled so far, initial set included;
    pseudo_labels: model masks used in this round's training (CEAL); annotation_seconds: the oracle's
    predicted time for all human labels so far; test_dice: mean per-image Dice of the served mask (the
    thresholded Monte-Carlo mean); pool_size: images that could be queried; synthetic_labels: generated
    (image, edited mask) pairs in this round's training (`+syn` arms; neither human nor pseudo labels);
    test_hd95: mean 95th-percentile Hausdorff distance (pixels, at the model size) of the served foreground
    mask over the test images where both it and the reference are non-empty (`ceal.trainer.metrics`), -1 when
    there is none or it was not measured; semi_images: unlabelled pool images whose pseudo-labels entered
    this round's training (`+semi` arms), semi_weight: their mean weight (confident share of pixels, mean over
    draws); rho_entropy, rho_mi, rho_ensemble: Spearman correlation on the test images between an image's
    score (MC entropy, MC mutual information, disagreement of the last `ensemble_k` versions' masks) and its
    actual Dice error (1 − Dice of the served mask), -2 where not measured (the ensemble before two versions
    exist; a constant score). The fields from synthetic_labels on have defaults, so rows and CSVs written
    before they existed still read (as 0, or -1 / -2; sentinels rather than NaN keep rows comparable).
    """

    strategy: str
    seed: int
    round: int
    human_labels: int
    pseudo_labels: int
    annotation_seconds: float
    test_dice: float
    pool_size: int
    synthetic_labels: int = 0
    test_hd95: float = -1.0
    semi_images: int = 0
    semi_weight: float = 0.0
    rho_entropy: float = -2.0
    rho_mi: float = -2.0
    rho_ensemble: float = -2.0

    @property
    def human_fraction(self) -> float:
        """Share of the pool labelled by a human, 0..1."""
        return self.human_labels / self.pool_size


COLUMNS: Final = tuple(f.name for f in dataclasses.fields(ResultRow))
_CONVERT: Final = {"int": int, "float": float, "str": str}  # annotations are strings (postponed evaluation)
_TYPES: Final = {f.name: _CONVERT[str(f.type)] for f in dataclasses.fields(ResultRow)}
# Columns a results.csv written before they existed lacks: read as their default.
_DEFAULTS: Final = {f.name: f.default for f in dataclasses.fields(ResultRow) if f.default is not dataclasses.MISSING}


def _parse(raw: dict[str, str], where: str) -> ResultRow:
    try:
        values = {
            name: _TYPES[name](raw[name]) if name in raw or name not in _DEFAULTS else _DEFAULTS[name]
            for name in COLUMNS
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise SimulationError(f"{where} is not a row of results.csv ({exc}); columns are {', '.join(COLUMNS)}") from exc
    return ResultRow(**values)


def read_results(path: Path) -> list[ResultRow]:
    """The rows of a results.csv (none when it does not exist)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [_parse(raw, f"{path.name} line {i + 2}") for i, raw in enumerate(csv.DictReader(f))]


def write_results(path: Path, rows: Iterable[ResultRow]) -> None:
    """Write results.csv atomically (a temporary file, then one rename), sorted by strategy, seed, round."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in sorted(rows, key=lambda r: (r.strategy, r.seed, r.round)):
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in dataclasses.astuple(row)])
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
