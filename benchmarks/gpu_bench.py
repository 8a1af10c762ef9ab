"""On CUDA: the split engine with IOBinding, fp32 against an fp16 prefix behind the ranking-fidelity gate.

    .venv/bin/python benchmarks/gpu_bench.py [--placement last_decoder] [--images 32] [--samples 20]

`LoadedModel` picks the CUDA provider when onnxruntime-gpu sees a driver and then runs its prefix and suffix
through IOBinding (`engine/iobinding.py`). The fp16 variant converts the *prefix* graph to float16 with
float32 inputs and outputs (`onnxconverter_common.float16`), so the suffix, its masks and the statistics stay
float32; with the late dropout the prefix is nearly all the work. It is offered only when the image scores of
the fp16-prefix model rank like fp32's at fixed T (Spearman ρ of mean MI and mean entropy ≥ 0.95, same seeds);
otherwise the script says so and reports fp32 alone. Refuses to run without the CUDA provider (it would
measure the CPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench_model
from benchmarks._common import machine, table
from benchmarks._perf_fidelity import BAR, _scores, _spearman
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.runtime import make_session


def fp16_prefix(model: LoadedModel) -> LoadedModel:
    """The same loaded model with its prefix session rebuilt from a float16 prefix graph (float32 I/O)."""
    from onnxconverter_common import float16

    graph = float16.convert_float_to_float16(onnx.load_from_string(model.split.prefix), keep_io_types=True)
    model.prefix = make_session(graph.SerializeToString())
    return model


def scores(model: LoadedModel, inputs: list[np.ndarray], samples: int) -> tuple[list[float], list[float], float]:
    """Mean-MI and mean-entropy scores (seed i for image i) and images per second."""
    mi, entropy = [], []
    started = time.perf_counter()
    for i, x in enumerate(inputs):
        m, e = _scores(model.sample(x, samples, np.random.default_rng(i)).probabilities[0])
        mi.append(m)
        entropy.append(e)
    return mi, entropy, len(inputs) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placement", default="last_decoder")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench"))
    args = parser.parse_args(argv)
    bench = bench_model.ensure(args.workdir, args.placement)
    fp32 = LoadedModel(bench.meta, bench.onnx)
    if fp32.device != "cuda":
        print(f"no CUDA provider here ({fp32.provider}): install onnxruntime-gpu on a machine with a GPU", flush=True)
        return 2
    inputs = [prepare(image, bench.meta)[None] for image in bench.val.images[: args.images]]
    print(f"# gpu bench: {machine()}; {args.placement}, {len(inputs)} images, T = {args.samples}", flush=True)
    scores(fp32, inputs[:2], args.samples)  # warm-up: cuDNN algorithm search, allocator
    mi32, ent32, rate32 = scores(fp32, inputs, args.samples)
    rows = [("fp32, IOBinding", f"{rate32:.1f}", "1.00×", "1.000", "1.000", "reference")]
    half = fp16_prefix(LoadedModel(bench.meta, bench.onnx))
    scores(half, inputs[:2], args.samples)
    mi16, ent16, rate16 = scores(half, inputs, args.samples)
    rho = (_spearman(mi32, mi16), _spearman(ent32, ent16))
    offered = "offered" if min(rho) >= BAR else f"REFUSED (ρ < {BAR})"
    rows.append(
        (
            "fp16 prefix, IOBinding",
            f"{rate16:.1f}",
            f"{rate16 / rate32:.2f}×",
            f"{rho[0]:.3f}",
            f"{rho[1]:.3f}",
            offered,
        )
    )
    print(table(("variant", "images/s", "vs fp32", "ρ MI", "ρ entropy", "gate"), rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
