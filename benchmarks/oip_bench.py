"""The Open Inference Protocol under concurrency: tritonclient's `infer` beside the SDK's `predict`, one server.

    .venv/bin/python benchmarks/oip_bench.py [--seconds 6] [--concurrency 1 4 8] [--samples 20]

perf_analyzer is not on these registries, so this stands in for it: `ceal serve` in a subprocess (the served
bench's model: U-Net base 16 depth 4 at 96×128, untrained: timing only), then at each concurrency C the same
image and T through (a) tritonclient[grpc] from PyPI, C threads in its own venv (.venv/tools/tritonclient,
`make deps`), `inference.GRPCInferenceService/ModelInfer` with raw tensors; (b) the ceal SDK, C threads,
`ceal.v1.Segmentation/Predict`. Same outputs asked for (probability, label map, entropy, score); sides
alternate which goes first. The ratio says what the second protocol costs; absolute rates are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, table
from benchmarks.served_bench import IMAGE, MODEL, SIZE, Level, run_level
from ceal.client import Client
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.unet import UNet
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
TRITON_PYTHON = ROOT / ".venv" / "tools" / "tritonclient" / "bin" / "python"


def triton_level(address: str, image: Path, concurrency: int, seconds: float, samples: int) -> Level:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    worker = ROOT / "benchmarks" / "_oip_triton_worker.py"
    cmd = [str(TRITON_PYTHON), str(worker), address, str(image), str(concurrency), str(seconds), str(samples)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, timeout=seconds + 120)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return Level(r["throughput"], r["p50"], r["p95"], r["p99"], r["requests"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per level and side")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args(argv)
    if not TRITON_PYTHON.exists():
        print(f"{TRITON_PYTHON} is missing: run `make deps`", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ceal-oip-"))
    training: dict[str, object] = {"train_config": {"height": SIZE[0], "width": SIZE[1]}}
    export_model(UNet(MODEL), training, work / "models", "lesion")
    pixels = make_case(case_rng(3, 0), *IMAGE).image  # uint8 (H, W, 3)
    np.save(work / "image.npy", pixels)
    print(
        f"# OIP bench: {machine()}; U-Net base {MODEL.base_filters} depth {MODEL.depth} at {SIZE[0]}×{SIZE[1]}, "
        f"T = {args.samples}, {IMAGE[0]}×{IMAGE[1]} RGB uint8 in, {args.seconds:g} s per level; shared machine",
        flush=True,
    )
    server = ServerProcess(work / "models", work / "state", work / "server.log")
    client = Client(server.address, timeout=120)

    def sdk(i: int) -> object:
        return client.predict(pixels, samples=args.samples, seed=i)

    rows = []
    try:
        for n, c in enumerate(args.concurrency):
            sides = ["tritonclient", "sdk"] if n % 2 == 0 else ["sdk", "tritonclient"]
            results: dict[str, Level] = {}
            for side in sides:
                if side == "sdk":
                    results[side] = run_level(sdk, c, args.seconds)
                else:
                    results[side] = triton_level(server.address, work / "image.npy", c, args.seconds, args.samples)
            ratio = results["tritonclient"].throughput / results["sdk"].throughput
            for side in ("tritonclient", "sdk"):
                r = results[side]
                rows.append(
                    (c, side, f"{r.throughput:.2f}", f"{r.p50:.0f}", f"{r.p95:.0f}", f"{r.p99:.0f}", r.requests,
                     f"{ratio:.0%}" if side == "tritonclient" else "")
                )  # fmt: skip
            print(f"  concurrency {c}: tritonclient/SDK throughput {ratio:.0%}", flush=True)
    finally:
        client.close()
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    print(table(("concurrency", "client", "req/s", "p50 ms", "p95 ms", "p99 ms", "requests", "triton/SDK"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
