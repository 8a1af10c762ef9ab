"""Monte-Carlo engine throughput: whole model T times, whole model on a T batch, split prefix/suffix.

    python benchmarks/engine_bench.py [--samples 20] [--repeats 15] [--threads 0]

Exports a CEAL-ish U-Net (random weights; speed does not depend on them) through the real export path,
loads it as the service does, and times one image's T Monte-Carlo samples three ways:

  (a) whole, T-loop   the whole graph T times with batch 1
  (b) whole, T-batch  the whole graph once on T copies (`LoadedModel.sample_whole`)
  (c) split           the prefix once, the suffix on T copies (`LoadedModel.sample`, what is served)

The modes are interleaved within each repeat (their order rotating) so drifting machine load hits all
alike; the table shows medians and each mode's speed relative to (a) and (b). Not a test: no assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ceal.service.engine.loaded import LoadedModel, load_model
from ceal.service.engine.preprocess import prepare
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.train import TrainConfig
from ceal.trainer.unet import UNet, UNetConfig

Mode = Callable[[], object]


def build_model(folder: Path, args: argparse.Namespace) -> LoadedModel:
    unet = UNet(UNetConfig(base_filters=args.base_filters, depth=args.depth, dropout=0.5))
    cfg = TrainConfig(height=args.height, width=args.width)
    directory = export_model(unet, {"train_config": vars(cfg)}, folder, "bench")
    return load_model(directory, intra_op_threads=args.threads)


def modes(model: LoadedModel, x: np.ndarray, samples: int) -> dict[str, Mode]:
    """x: (1, C, H, W) model input. Each mode computes `samples` Monte-Carlo samples of that image."""
    name = model.meta.input_name
    rng = np.random.default_rng(0)

    def t_loop() -> object:
        return [model.whole.run(None, {name: x}) for _ in range(samples)]

    return {
        "(a) whole, T-loop": t_loop,
        "(b) whole, T-batch": lambda: model.sample_whole(x, samples),
        "(c) split prefix/suffix": lambda: model.sample(x, samples, rng),
    }


def measure(runs: dict[str, Mode], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each mode, `repeats` times, interleaved with a rotating order."""
    for run in runs.values():  # warm-up: session initialisation, memory arenas, CUDA kernels
        run()
    names = list(runs)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def report(seconds: dict[str, list[float]], samples: int) -> str:
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    base_a, base_b = medians["(a) whole, T-loop"], medians["(b) whole, T-batch"]
    lines = [f"{'mode':<26}{'ms/image':>10}{'images/s':>10}{'vs (a)':>8}{'vs (b)':>8}{'spread':>9}"]
    for name, median in medians.items():
        spread = (max(seconds[name]) - min(seconds[name])) / median
        lines.append(
            f"{name:<26}{median * 1e3:>10.1f}{1 / median:>10.2f}{base_a / median:>7.2f}×"
            f"{base_b / median:>7.2f}×{spread:>8.0%}"
        )
    lines.append(f"T = {samples} samples per image; medians; spread = (max − min) / median over repeats")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20, help="Monte-Carlo samples T per image")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats of each mode")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: one per core)")
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(Path(folder), args)
    x = prepare(make_case(case_rng(0, 0), args.height, args.width).image, model.meta)[None]
    site = model.split.sites[0]
    print(
        f"U-Net base_filters={args.base_filters} depth={args.depth}, input {args.height}×{args.width}, "
        f"{len(model.split.sites)} dropout site(s), first mask {site.shape}; provider {model.provider}, "
        f"threads {args.threads or 'auto'}"
    )
    print(report(measure(modes(model, x, args.samples), args.repeats), args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
