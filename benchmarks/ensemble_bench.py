"""The version ensemble's query list: what an `ensemble` GetQueryList costs over a pool whose last 3 versions kept
their masks, before and after reading the masks without parsing each blob's header and counting their
disagreement on the packed bits.

    .venv/bin/python benchmarks/ensemble_bench.py [--images 2000] [--height 96] [--width 128]

Builds a SQLite pool of `--images` images scored by 3 versions (a mask each, at the model's output size), then
times side by side (median of repeats): decoding the 3 × N mask blobs the old way (`decode_array`, np.load)
and the new (`decode_known`); the disagreement column per image on unpacked masks (the old path, still the one
for members of mixed sizes) and on packed bits for the whole pool (`disagreement_column`); and the whole query
list, `ensemble` against `bald` on the same pool. Exits 1 when old and new differ in any value.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, median, table, timed
from ceal.service.pool.ensemble import _stacked, disagreement_column
from ceal.service.pool.queries import QueryRequest, query_list
from ceal.service.selection import version_disagreement
from ceal.service.store import NewImage, PackedMask, ScoreRow, SQLitePoolStore
from ceal.service.store.base import MASK_VERSIONS
from ceal.service.store.codec import decode_array, decode_known, encode_array

VERSIONS = 3


def _pool(store: SQLitePoolStore, n: int, height: int, width: int) -> list[str]:
    """n images, each with a shifted rectangle as the mask of every version (so versions disagree a little)."""
    rng = np.random.default_rng(0)
    images = [NewImage(rng.integers(0, 255, (8, 8)).astype(np.uint8)) for _ in range(n)]
    ids = [image_id for image_id, _ in store.register_images("p", images)]
    for version in range(1, VERSIONS + 1):
        rows = []
        for image_id in ids:
            mask = np.zeros((height, width), bool)
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            mask[top : top + height // 3, left : left + width // 3] = True
            rows.append(
                ScoreRow(
                    image_id=image_id,
                    model_name="unet",
                    model_version=version,
                    entropy=0.1,
                    mutual_information=float(rng.uniform()),
                    variance=0.01,
                    confidence=0.9,
                    boundary_length=float(height + width),
                    components=1,
                    foreground_fraction=1 / 9,
                    mask=PackedMask.of(mask),
                )
            )
        store.put_scores("p", rows)
    return ids


def _per_image(ids: list[str], masks: dict[str, dict[int, PackedMask]]) -> np.ndarray:
    """The column as it was computed before: one image at a time, unpacked."""
    out = np.full(len(ids), np.nan)
    for n, image_id in enumerate(ids):
        kept = masks[image_id]
        members = [kept[v] for v in sorted(kept, reverse=True)][:MASK_VERSIONS]
        out[n] = version_disagreement(_stacked(members))[0]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(
        f"# ensemble bench: {args.images:,} images × {VERSIONS} versions, masks {args.height}×{args.width}; {machine()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        store = SQLitePoolStore(Path(folder) / "pool.sqlite3")
        ids = _pool(store, args.images, args.height, args.width)
        masks = store.version_masks("p", "unet")
        blobs = [encode_array(m.bits) for kept in masks.values() for m in kept.values()]
        shape = next(iter(next(iter(masks.values())).values())).bits.shape
        same = all(np.array_equal(decode_array(b), decode_known(b, "|u1", shape)) for b in blobs)
        old_column, new_column = _per_image(ids, masks), disagreement_column(ids, masks, VERSIONS)
        same = same and new_column is not None and np.allclose(old_column, new_column, rtol=0, atol=1e-12)
        request = QueryRequest("p", lease_seconds=60.0, strategy="ensemble", k=20)
        pairs = {
            f"decode {len(blobs):,} mask blobs": (
                lambda: [decode_array(b) for b in blobs],
                lambda: [decode_known(b, "|u1", shape) for b in blobs],
            ),
            "disagreement column": (lambda: _per_image(ids, masks), lambda: disagreement_column(ids, masks, VERSIONS)),
        }
        rows: list[tuple[object, ...]] = []
        for name, (old, new) in pairs.items():
            old_ms = median(timed(old, args.repeats)) * 1000
            new_ms = median(timed(new, args.repeats)) * 1000
            rows.append((name, round(old_ms, 1), round(new_ms, 1), f"{old_ms / new_ms:.1f}×"))
        print(table(("step", "before ms", "after ms", "speed-up"), rows))
        ensemble_ms = median(timed(lambda: query_list(store, "unet", VERSIONS, request), args.repeats)) * 1000
        bald = QueryRequest("p", lease_seconds=60.0, strategy="bald", k=20)
        bald_ms = median(timed(lambda: query_list(store, "unet", VERSIONS, bald), args.repeats)) * 1000
        print(
            table(
                ("query list (whole call)", "median ms"),
                [("ensemble", round(ensemble_ms, 1)), ("bald", round(bald_ms, 1))],
            )
        )
        print(f"ensemble / bald: {ensemble_ms / bald_ms:.1f}×; old and new agree: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
