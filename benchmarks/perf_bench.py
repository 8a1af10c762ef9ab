"""Scored images per second at T = 20 on the CEAL-size U-Net, six ways, in one run on one machine.

    .venv/bin/python benchmarks/perf_bench.py [--images 2] [--repeats 3] [--workdir runs/bench]

Variants: (a) PyTorch, T passes of one image (CEAL's reference, `set_mc_dropout`); (b) PyTorch, the image
replicated T times in one batch (baal's default); (c) onnxruntime, T copies as one batch (`sample_whole`);
(d) the split engine, prefix once and suffix on T rows (`LoadedModel.sample`); (e) (d) on the int8 model;
(f) (e) with adaptive T. The model is the CEAL layout (filters 32..512, depth 4, Dropout(0.5) at the
bottleneck, input 192×240, ≈17 GFLOP a pass) with random weights: speed does not depend on them. Fidelity
(int8 gate figures, adaptive-T ranking) needs a trained model, so it is measured first on a small trained
one (`_perf_fidelity.py`), and (f) replays that model's adaptive T per image.

Each variant runs in its own process (peak RSS from getrusage); repeats are interleaved (round r runs every
variant once, in a rotated order) and the report gives medians. Effective GFLOP/s counts the naive cost of
a score, T full passes (T × 17 GFLOP), whatever a variant actually computed, against the machine's sgemm.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _perf_fidelity as fid
from benchmarks._common import machine, median, sgemm_gflops, table
from ceal.service.engine.preprocess import prepare
from ceal.service.metadata import ModelMetadata
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import to_onnx_bytes
from ceal.trainer.quantize import quantize_int8
from ceal.trainer.unet import UNet, UNetConfig

HEIGHT, WIDTH = 192, 240
CEAL = UNetConfig(in_channels=3, num_classes=1, base_filters=32, depth=4, dropout=0.5)
VARIANTS = {
    "torch_passes": "(a) PyTorch, T passes of 1 image",
    "torch_replicated": "(b) PyTorch, image ×T in one batch",
    "ort_whole": "(c) onnxruntime, T as one batch",
    "split": "(d) split prefix/suffix",
    "split_int8": "(e) + int8",
    "split_int8_adaptive": "(f) + adaptive T",
}
WORKER = Path(__file__).resolve().parent / "_perf_worker.py"


def conv_gflop(model: UNet, height: int, width: int) -> float:
    """Multiply-adds × 2 of every Conv / ConvTranspose for one (1, C, height, width) pass, in GFLOP."""
    total = 0

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * output.numel() * module.in_channels * k // module.groups
        elif isinstance(module, torch.nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * inputs[0].numel() * module.out_channels * k

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, model.config.in_channels, height, width))
    for h in handles:
        h.remove()
    return total / 1e9


def prepare_workdir(
    work: Path, images: int, samples: int, schedule: tuple[int, ...], min_samples: int
) -> tuple[float, float]:
    """Write what the workers load; returns (GFLOP per pass, seconds spent quantising).

    schedule: the T at which the trained model stopped per image, under a rule with floor `min_samples`."""
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = UNet(CEAL).eval()
    torch.save(model.state_dict(), work / "ceal.pt")
    meta = ModelMetadata(
        name="ceal",
        version=1,
        input_channels=3,
        input_height=HEIGHT,
        input_width=WIDTH,
        num_classes=1,
        mean=0.5,
        std=0.25,
        dropout_rate=CEAL.dropout,
        extra={"unet": CEAL.to_json(), "bench_samples": samples},
    )
    (work / "meta.json").write_text(meta.to_json())
    fp32 = to_onnx_bytes(model, HEIGHT, WIDTH, mc_dropout=True)
    (work / "fp32.onnx").write_bytes(fp32)
    cases = [make_case(case_rng(7, i), HEIGHT, WIDTH).image for i in range(max(images, 16))]
    inputs = np.stack([prepare(image, meta) for image in cases])
    started = time.perf_counter()
    (work / "int8.onnx").write_bytes(quantize_int8(fp32, meta, inputs[:16]))
    quantising = time.perf_counter() - started
    np.save(work / "images.npy", inputs[:images])
    (work / "schedule.json").write_text(json.dumps({"min_samples": min_samples, "samples": list(schedule)}))
    return conv_gflop(model, HEIGHT, WIDTH), quantising


class Worker:
    def __init__(self, variant: str, work: Path) -> None:
        self.variant = variant
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), variant, str(work)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.ask(None)  # wait for {"ready": true}

    def ask(self, request: dict[str, object] | None) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if request is not None:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.variant} died (exit {self.proc.wait()})")
        answer: dict[str, object] = json.loads(line)
        return answer

    def close(self) -> float:
        rss = float(self.ask({"quit": True})["peak_rss_mib"])  # type: ignore[arg-type]
        self.proc.wait(timeout=60)
        return rss


def measure(work: Path, images: int, repeats: int) -> tuple[dict[str, dict[str, object]], list[float]]:
    """Per variant: seconds per image (all repeats), samples drawn, peak RSS; and sgemm GFLOP/s per round.

    Round r runs every variant once, starting at variant r (rotated), then measures sgemm, so slow drift
    of a shared machine's load falls on every variant alike.
    """
    workers = [Worker(v, work) for v in VARIANTS]  # started one after another: loading is not timed
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    drawn: dict[str, list[int]] = {v: [] for v in VARIANTS}
    sgemm = []
    try:
        for r in range(repeats):
            for w in workers[r % len(workers) :] + workers[: r % len(workers)]:
                answer = w.ask({"images": list(range(images))})
                seconds[w.variant] += answer["seconds"]  # type: ignore[arg-type]
                drawn[w.variant] += answer["samples"]  # type: ignore[arg-type]
            sgemm.append(sgemm_gflops(repeats=3))
            print(f"  round {r + 1}/{repeats} done", flush=True)
    finally:
        rss = {w.variant: w.close() for w in workers}
    return {v: {"seconds": seconds[v], "samples": drawn[v], "rss": rss[v]} for v in VARIANTS}, sgemm


def speed_table(results: dict[str, dict[str, object]], gflop: float, samples: int, sgemm: float) -> str:
    rate = {v: 1.0 / median(r["seconds"]) for v, r in results.items()}  # type: ignore[arg-type]
    rows = []
    for v, r in results.items():
        effective = rate[v] * samples * gflop
        rows.append(
            (
                VARIANTS[v],
                f"{rate[v]:.3f}",
                f"{np.mean(r['samples']):.1f}",  # type: ignore[call-overload]
                f"{rate[v] / rate['torch_passes']:.2f}×",
                f"{rate[v] / rate['ort_whole']:.2f}×",
                f"{effective:.0f}",
                f"{100 * effective / sgemm:.0f}%",
                f"{r['rss']:.0f}",
            )
        )
    return table(
        ("variant", "images/s", "mean T", "vs (a)", "vs (c)", "eff. GFLOP/s", "of sgemm", "peak RSS MiB"), rows
    )


def fidelity_tables(report: fid.FidelityReport) -> str:
    f = report.int8
    int8 = table(
        ("ρ MI", "ρ entropy", "Dice fp32", "Dice int8", "Dice drop", "images", "T"),
        [
            (
                f"{f.spearman_mutual_information:.3f}",
                f"{f.spearman_entropy:.3f}",
                f"{f.dice_fp32:.4f}",
                f"{f.dice_int8:.4f}",
                f"{f.dice_drop:+.4f}",
                f.images,
                f.samples,
            )
        ],
    )
    rows = [
        (
            str(r.min_samples),
            f"{r.relative:g} × spread = {r.tolerance:.2e}",
            f"{r.mean_samples:.1f}",
            f"{r.fewest}–{r.most}",
            f"{r.spearman_mutual_information:.3f}",
            f"{r.spearman_entropy:.3f}",
        )
        for r in report.adaptive
    ]
    rows.append(
        (
            "–",
            "fixed T, another seed (noise floor)",
            f"{report.int8.samples:.1f}",
            f"{report.int8.samples}–{report.int8.samples}",
            f"{report.noise_floor[0]:.3f}",
            f"{report.noise_floor[1]:.3f}",
        )
    )
    t = report.int8.samples
    adaptive = table(("min T", "tolerance (nats)", "mean T", "T range", f"ρ MI vs T={t}", f"ρ entropy vs T={t}"), rows)
    floors = " or ".join(str(m) for m in fid.MIN_SAMPLES)
    title = f"adaptive T (T_max {t}, chunks of 4, min T {floors}) vs fixed T = {t}, same masks"
    return f"int8 vs fp32 (same masks):\n{int8}\n\n{title}:\n{adaptive}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1, help="images per variant per round")
    parser.add_argument("--repeats", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--samples", type=int, default=20, help="Monte-Carlo samples T")
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"# perf bench: {machine()}", flush=True)
    print(
        f"## fidelity (trained {fid.UNET.base_filters}-filter depth-{fid.UNET.depth} U-Net at "
        f"{fid.HEIGHT}×{fid.WIDTH}, {fid.VALIDATION} validation images, T = {args.samples})",
        flush=True,
    )
    report = fid.report(args.workdir, args.samples)
    pick = fid.chosen(report.adaptive, report.noise_floor)
    print(f"validation Dice {report.validation_dice:.3f}\n{fidelity_tables(report)}")
    print(
        f"(f) replays the adaptive T of min T {pick.min_samples}, tolerance {pick.relative:g} × spread "
        f"(mean T {pick.mean_samples:.1f})\n"
    )
    gflop, quantising = prepare_workdir(
        args.workdir / "ceal", args.images, args.samples, pick.samples, pick.min_samples
    )
    print(
        f"## speed: CEAL-size U-Net {HEIGHT}×{WIDTH}, {gflop:.2f} GFLOP a pass, T = {args.samples}, "
        f"{args.images} images × {args.repeats} interleaved rounds per variant (int8 quantisation "
        f"took {quantising:.1f} s)",
        flush=True,
    )
    results, rounds = measure(args.workdir / "ceal", args.images, args.repeats)
    sgemm = median(rounds)
    print(
        f"sgemm (numpy fp32 2048², once per round): median {sgemm:.0f} GFLOP/s, range "
        f"{min(rounds):.0f}–{max(rounds):.0f}"
    )
    print(speed_table(results, gflop, args.samples, sgemm))
    (args.workdir / "perf_results.json").write_text(
        json.dumps(
            {
                "sgemm_gflops": sgemm,
                "gflop_per_pass": gflop,
                "results": results,
                "fidelity": dataclasses.asdict(report),
            },
            indent=1,
            default=str,
        )
    )
    print(
        f"total {time.perf_counter() - started:.0f} s; figures taken on a shared machine: compare ratios, "
        "not absolute rates"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
