"""Served overhead: Predict through gRPC against the same engine called in-process, same model, same T.

    .venv/bin/python benchmarks/served_bench.py [--seconds 8] [--concurrency 1 4 8 16]

In-process: `Engine.predict` (dynamic batcher, preprocessing, statistics, maps at the image's size) from C
threads. Served: `ceal serve` in a subprocess with the same batcher settings, called through the SDK
(`Client.predict`) from C threads of this process: request encoding, HTTP/2 on 127.0.0.1, the servicer,
response encoding and decoding are the overhead. Each level runs for a fixed time after one warm-up call
per thread; levels alternate which side goes first. Goal: served at concurrency 8 ≥ 90 % of in-process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, table
from ceal.client import Client
from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine, PredictOptions
from ceal.service.engine.loaded import load_model
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.unet import UNet, UNetConfig
from tests.support.server import ServerProcess

GOAL = 0.90
MODEL = UNetConfig(base_filters=16, depth=4)  # `ceal train`'s default model
SIZE = (96, 128)  # model input
IMAGE = (192, 256)  # what clients send: resized in and the maps resized back out, on both sides


@dataclass(frozen=True)
class Level:
    throughput: float  # requests per second
    p50: float  # latency, ms
    p95: float
    p99: float
    requests: int


def run_level(call: Callable[[int], object], concurrency: int, seconds: float) -> Level:
    """`concurrency` threads calling `call(i)` back to back for `seconds` (after one warm-up call each)."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    warmed, go = threading.Barrier(concurrency + 1), threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(k: int) -> None:
        call(k)
        warmed.wait()
        go.wait()  # stop_at is set between the two barriers
        i = 0
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            call(k * 100_000 + i)
            latencies[k].append(time.perf_counter() - began)
            i += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    warmed.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    go.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x * 1000 for xs in latencies for x in xs)
    q = statistics.quantiles(flat, n=100) if len(flat) >= 2 else [flat[0]] * 99
    return Level(len(flat) / elapsed, q[49], q[94], q[98], len(flat))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per level and side")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ceal-served-"))
    training: dict[str, object] = {"train_config": {"height": SIZE[0], "width": SIZE[1]}}
    directory = export_model(UNet(MODEL), training, work / "models", "lesion")
    pixels = make_case(case_rng(3, 0), *IMAGE).image  # uint8 (H, W, 3)
    print(
        f"# served bench: {machine()}; U-Net base {MODEL.base_filters} depth {MODEL.depth} at {SIZE[0]}×{SIZE[1]}, "
        f"T = {args.samples}, {IMAGE[0]}×{IMAGE[1]} RGB in, probability + label map + entropy out, "
        f"{args.seconds:g} s per level; shared machine",
        flush=True,
    )
    engine = Engine(DynamicBatcher(max_images=8, max_delay=0.005, max_queue=64))
    model = load_model(directory)
    server = ServerProcess(work / "models", work / "state", work / "server.log")
    client = Client(server.address, timeout=120)

    def in_process(i: int) -> object:
        return engine.predict(model, pixels, PredictOptions(samples=args.samples, seed=i))

    def served(i: int) -> object:
        return client.predict(pixels, samples=args.samples, seed=i)

    rows, ratios = [], {}
    try:
        for n, c in enumerate(args.concurrency):
            order = [("in-process", in_process), ("served", served)]
            sides = order if n % 2 == 0 else order[::-1]
            results = {name: run_level(fn, c, args.seconds) for name, fn in sides}
            ratios[c] = results["served"].throughput / results["in-process"].throughput
            for name in ("in-process", "served"):
                r = results[name]
                rows.append(
                    (
                        c,
                        name,
                        f"{r.throughput:.2f}",
                        f"{r.p50:.0f}",
                        f"{r.p95:.0f}",
                        f"{r.p99:.0f}",
                        r.requests,
                        f"{ratios[c]:.0%}" if name == "served" else "",
                    )
                )
            print(f"  concurrency {c}: served/in-process {ratios[c]:.0%}", flush=True)
    finally:
        client.close()
        server.terminate()
        engine.batcher.close()
        shutil.rmtree(work, ignore_errors=True)
    print(table(("concurrency", "side", "req/s", "p50 ms", "p95 ms", "p99 ms", "requests", "served/in-process"), rows))
    if 8 in ratios:
        verdict = "meets" if ratios[8] >= GOAL else "MISSES"
        print(f"served at concurrency 8 is {ratios[8]:.0%} of in-process: {verdict} the {GOAL:.0%} goal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
