"""Pool scoring at a reduced resolution: images/s and ranking fidelity against full size, on the trained models.

    .venv/bin/python benchmarks/resolution_bench.py [--placement bottleneck last_decoder] [--images 32]
        [--scales 0.5 0.667] [--samples 20 --tolerance 1e-3 --min-samples 8] [--no-noise-floor]

Each image of the bench models' validation set (`bench_model.py`: 192×240 synthetic lesions, the CEAL-size
U-Net trained once and cached in runs/bench/) is scored the way pool scoring scores it — `prepare` to the
model's input size, prefix once, suffix samples (by default the server's background rescoring: adaptive T,
tolerance 1e-3 nats, floor 8, T max 20), then `image_scores` — at full size and at each scale (sides rounded
to multiples of 2^depth, `engine/reduced.py`), one onnxruntime thread. The variants are interleaved image by
image (rotated order), with seed i for image i on every variant, so drift on a shared machine falls on all of
them alike. ρ: Spearman of the mean-MI and mean-entropy image scores against full size; the noise floor is full
size again with other dropout masks (seed i + 1000): how far two full-size runs already disagree. The gate's
verdict is the service's: reduced size where ρ(MI) >= FIDELITY_RHO (`pool/resolution.py`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench_model
from benchmarks._common import machine, table
from ceal.service.engine.adaptive import AdaptiveRule, run_samples
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.engine.reduced import reduced_model
from ceal.service.engine.scores import image_scores
from ceal.service.pool.resolution import FIDELITY_RHO
from ceal.trainer.unet import PLACEMENTS

NOISE_SEED = 1000  # the noise floor's dropout masks: seed i + NOISE_SEED for image i


@dataclass
class Variant:
    label: str
    model: LoadedModel
    seed_offset: int = 0
    seconds: float = 0.0
    mi: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    drawn: list[int] = field(default_factory=list)


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan


def _score(variant: Variant, image: np.ndarray, index: int, samples: int, rule: AdaptiveRule | None) -> None:
    """One image through `variant.model` as pool scoring does it, timed from pixels to image scores."""
    started = time.perf_counter()
    model = variant.model
    features = model.run_prefix(prepare(image, model.meta)[None])
    rng = np.random.default_rng(index + variant.seed_offset)
    probs = run_samples(model, features, samples, rng, rule)[0]
    scores = image_scores(model, f"case{index}", probs, model.descriptors(features)[0], image.shape[:2])
    variant.seconds += time.perf_counter() - started
    variant.mi.append(scores.mutual_information)
    variant.entropy.append(scores.entropy)
    variant.drawn.append(int(probs.shape[0]))


def bench(
    placement: str, args: argparse.Namespace, rule: AdaptiveRule | None
) -> tuple[list[list[object]], list[dict[str, object]]]:
    model = bench_model.ensure(args.workdir, placement)
    full = LoadedModel(model.meta, model.onnx, intra_op_threads=1)
    variants = [Variant("full", full)]
    if args.noise_floor:
        variants.append(Variant("full, other masks (noise floor)", full, NOISE_SEED))
    for scale in args.scales:
        small = reduced_model(full, model.onnx, scale)
        variants.append(Variant(f"× {scale:.3g}", small))
    images = model.val.images[: args.images]
    for v in variants:  # warm-up, untimed: sessions' first runs allocate their arenas
        _score(Variant(v.label, v.model), images[0], 0, args.samples, rule)
    for i, image in enumerate(images):
        for k in range(len(variants)):  # rotated order: no variant always runs first (cold caches) or last
            _score(variants[(i + k) % len(variants)], image, i, args.samples, rule)
        print(f"{placement}: image {i + 1}/{len(images)}", file=sys.stderr, flush=True)
    ref = variants[0]
    rate_full = len(images) / ref.seconds
    rows: list[list[object]] = []
    records: list[dict[str, object]] = []
    for v in variants:
        rate = len(images) / v.seconds
        rho_mi, rho_entropy = _spearman(ref.mi, v.mi), _spearman(ref.entropy, v.entropy)
        size = f"{v.model.meta.input_height}×{v.model.meta.input_width}"
        same = v is ref
        verdict = "offered" if rho_mi >= FIDELITY_RHO else "refused (full size)"
        gate = "" if same or v.seed_offset else verdict  # the gate judges reduced sizes only
        rows.append([
            placement, v.label, size, round(rate, 3), f"{rate / rate_full:.2f}×", round(float(np.mean(v.drawn)), 1),
            "—" if same else f"{rho_mi:.3f}", "—" if same else f"{rho_entropy:.3f}", gate,
        ])  # fmt: skip
        records.append({
            "placement": placement, "variant": v.label, "size": size, "images_per_second": rate,
            "vs_full": rate / rate_full, "mean_T": float(np.mean(v.drawn)), "rho_mi": rho_mi,
            "rho_entropy": rho_entropy, "images": len(images), "seconds": v.seconds,
        })  # fmt: skip
    return rows, records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placement", nargs="+", choices=PLACEMENTS, default=["last_decoder", "bottleneck"])
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench"))
    parser.add_argument("--images", type=int, default=32, help="validation images (ρ is taken over these)")
    parser.add_argument("--scales", type=float, nargs="+", default=[2 / 3, 0.5])
    parser.add_argument("--samples", type=int, default=20, help="T (T max under adaptive T)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="adaptive T's tolerance (nats); 0 = fixed T")
    parser.add_argument("--min-samples", type=int, default=8, help="adaptive T's floor")
    parser.add_argument("--no-noise-floor", dest="noise_floor", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    rule = AdaptiveRule(args.tolerance, min_samples=args.min_samples) if args.tolerance > 0 else None
    started = time.perf_counter()
    print(f"# {machine()}; load average {os.getloadavg()[0]:.1f} at the start; onnxruntime 1 thread")
    sampler = f"adaptive T (tolerance {args.tolerance:g}, floor {args.min_samples}, T max {args.samples})"
    print(f"# {args.images} validation images, {sampler if rule else f'fixed T = {args.samples}'}")
    rows: list[list[object]] = []
    records: list[dict[str, object]] = []
    for placement in args.placement:
        more_rows, more_records = bench(placement, args, rule)
        rows += more_rows
        records += more_records
    header = ["placement", "size", "input", "images/s", "vs full", "mean T", "ρ MI", "ρ entropy", "gate"]
    print(table(header, rows))
    print(f"# {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end")
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
