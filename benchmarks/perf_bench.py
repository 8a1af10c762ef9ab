"""Scored images per second at T = 20 on the trained CEAL-size U-Net, six ways, in one run on one machine.

    .venv/bin/python benchmarks/perf_bench.py [--placement last_decoder bottleneck] [--images 4] [--repeats 3]

Variants: (a) PyTorch, T passes of one image (CEAL's reference, `set_mc_dropout`); (b) PyTorch, the image
replicated T times in one batch (baal's default); (c) onnxruntime, T copies as one batch (`sample_whole`);
(d) the split engine, prefix once and suffix on T rows (`LoadedModel.sample`); (e) (d) on the int8 model;
(f) the split engine with adaptive T (on int8 where int8 and the rule hold the fidelity bar, else fp32).
All six run the same trained weights (`bench_model.py`: filters 32..512, depth 4, 192×240, trained once on
synthetic lesions and cached in runs/bench/), once per dropout placement: at the bottleneck (CEAL's) or only
after the last decoder block (`last_decoder`: the stochastic suffix is the 1×1 head). The fidelity half
(`_perf_fidelity.py`) compares the image scores of int8 and adaptive T with fp32 at fixed T on the same model.

Each variant runs in its own process (peak RSS from getrusage), with CEAL_BENCH_THREADS (--threads) torch and
onnxruntime threads; repeats are interleaved (round r runs every variant once, in a rotated order) and the
report gives medians. Effective GFLOP/s counts the naive cost of a score, T full passes, whatever a variant
actually computed, against the machine's sgemm.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _perf_fidelity as fid
from benchmarks import bench_model
from benchmarks._common import machine, median, sgemm_gflops, table
from benchmarks.bench_model import HEIGHT, WIDTH, BenchModel
from ceal.service.engine.preprocess import prepare
from ceal.trainer.placements import PLACEMENTS
from ceal.trainer.quantize import quantize_int8
from ceal.trainer.unet import UNet

CALIBRATION = 16  # training images the int8 ranges are taken from
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


def int8_model(bench: BenchModel, work: Path) -> tuple[bytes, float]:
    """The bench model quantised (cached beside it); returns (bytes, seconds spent quantising, 0 when cached)."""
    cached = bench_model.folder(work, bench.placement) / "int8.onnx"
    if cached.is_file():
        return cached.read_bytes(), 0.0
    calibration = bench_model.synth(CALIBRATION, seed=1).images
    started = time.perf_counter()
    data = quantize_int8(bench.onnx, bench.meta, np.stack([prepare(image, bench.meta) for image in calibration]))
    cached.write_bytes(data)
    return data, time.perf_counter() - started


def prepare_workdir(
    work: Path, bench: BenchModel, int8: bytes, images: int, samples: int, f: fid.Row, on_int8: bool
) -> float:
    """Write what the workers load; returns GFLOP per pass."""
    work.mkdir(parents=True, exist_ok=True)
    torch.save(bench.model.state_dict(), work / "ceal.pt")
    extra = {**bench.meta.extra, "bench_samples": samples}
    (work / "meta.json").write_text(dataclasses.replace(bench.meta, extra=extra).to_json())
    (work / "fp32.onnx").write_bytes(bench.onnx)
    (work / "int8.onnx").write_bytes(int8)
    inputs = np.stack([prepare(image, bench.meta) for image in bench.val.images[:images]])
    np.save(work / "images.npy", inputs)
    rule = {"tolerance": f.tolerance, "min_samples": f.min_samples, "int8": on_int8}
    (work / "rule.json").write_text(json.dumps(rule))
    return conv_gflop(bench.model, HEIGHT, WIDTH)


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


def fidelity_table(report: fid.FidelityReport) -> str:
    rows = [report.noise_floor, report.int8, *report.adaptive, report.int8_adaptive]
    body = [
        (
            r.label + (" ← chosen" if r is report.chosen else "") + (" ← (f)" if r is report.f_row else ""),
            str(r.min_samples or "–"),
            f"{r.relative:g} × spread = {r.tolerance:.2e}" if r.min_samples else "–",
            f"{r.mean_samples:.1f}",
            f"{r.fewest}–{r.most}",
            f"{r.spearman_mutual_information:.3f}",
            f"{r.spearman_entropy:.3f}",
            f"{r.dice:.3f}",
        )
        for r in rows
    ]
    t = report.samples
    return table(
        ("sampler", "min T", "tolerance (nats)", "mean T", "T range", f"ρ MI vs T={t}", f"ρ entropy vs T={t}", "Dice"),
        body,
    )


def run_placement(args: argparse.Namespace, placement: str) -> dict[str, object]:
    bench = bench_model.ensure(args.workdir, placement)
    int8, quantising = int8_model(bench, args.workdir)
    print(
        f"## {placement}: trained CEAL-size U-Net (validation Dice {bench.validation_dice:.3f}, chance "
        f"{bench.chance_dice:.3f}); int8 quantisation {quantising:.0f} s (0: cached)",
        flush=True,
    )
    report = fid.report(bench, int8, args.samples, args.fidelity_images, tuple(args.floors), tuple(args.tolerances))
    print(
        f"fidelity on {report.images} validation images, T = {report.samples}, bar ρ ≥ {report.bar:.3f} "
        f"(min(0.95, noise floor)); fp32 mean-probability Dice {report.dice_fp32:.3f}\n{fidelity_table(report)}"
    )
    f = report.f_row
    print(f"(f) runs {'int8' if report.use_int8 else 'fp32'} with min T {f.min_samples}, tolerance {f.tolerance:.2e}\n")
    work = args.workdir / f"speed-{placement}"
    gflop = prepare_workdir(work, bench, int8, args.images, args.samples, f, report.use_int8)
    print(
        f"speed: {gflop:.2f} GFLOP a pass, T = {args.samples}, {args.images} images × {args.repeats} interleaved "
        f"rounds per variant, {args.threads} thread(s)",
        flush=True,
    )
    results, rounds = measure(work, args.images, args.repeats)
    sgemm = median(rounds)
    print(
        f"sgemm (numpy fp32 2048², once per round): median {sgemm:.0f} GFLOP/s, "
        f"range {min(rounds):.0f}–{max(rounds):.0f}"
    )
    print(speed_table(results, gflop, args.samples, sgemm) + "\n", flush=True)
    return {"sgemm_gflops": sgemm, "gflop_per_pass": gflop, "results": results, "fidelity": dataclasses.asdict(report)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placement", nargs="+", choices=PLACEMENTS, default=["last_decoder", "bottleneck"])
    parser.add_argument("--images", type=int, default=4, help="images per variant per round")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--samples", type=int, default=20, help="Monte-Carlo samples T")
    parser.add_argument("--fidelity-images", type=int, default=32, help="validation images of the fidelity half")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--floors", type=int, nargs="+", default=list(fid.MIN_SAMPLES), help="adaptive floors tried")
    parser.add_argument(
        "--tolerances", type=float, nargs="+", default=list(fid.RELATIVE_TOLERANCES), help="× the score spread"
    )
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench"))
    args = parser.parse_args(argv)
    os.environ["CEAL_BENCH_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f"# perf bench: {machine()}", flush=True)
    out = {placement: run_placement(args, placement) for placement in args.placement}
    (args.workdir / "perf_results.json").write_text(json.dumps(out, indent=1, default=str))
    print(f"total {time.perf_counter() - started:.0f} s; a shared machine: compare ratios, not absolute rates")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
