"""Overload at default settings: a burst of concurrent Predicts against `ceal serve` with no tuning flags.

    .venv/bin/python benchmarks/overload_bench.py [--calls 256] [--deadline 5] [--size 256] [--samples 0]

`ceal serve` runs in a subprocess (a U-Net exported the way `ceal train` exports its default model, untrained:
the speed is what matters here), with only --models/--state/--port: the concurrent-RPC cap and the admission
control are the defaults. After a short warm-up (so the service rate is measured), `--calls` Predicts are
started at once from one channel, each with a `--deadline` in seconds. Each call's latency is taken from its
own start to its end. Reported: how many were accepted (OK) and refused (RESOURCE_EXHAUSTED), the p50/p99
latency of the refused, any other status (DEADLINE_EXCEEDED would mean admission let in work that could not
finish), and the server's RSS before the burst, at its peak during it, and after. Not a test; prints a table.
Pass criteria of issue 21: p99 of the refused under 100 ms, RSS growth under 25 %, every accepted call OK.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, table
from benchmarks.memory_soak import rss_mib
from ceal.client import requests
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.unet import UNet, UNetConfig
from ceal.v1 import segmentation_pb2_grpc
from tests.support.server import ServerProcess

MODEL = UNetConfig(base_filters=16, depth=4)  # `ceal train`'s default model
SIZE = (96, 128)  # model input


def _export(models: Path) -> None:
    export_model(UNet(MODEL), {"train_config": {"height": SIZE[0], "width": SIZE[1]}}, models, "lesion")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Peak:
    """Polls a process's RSS every `every` seconds in a thread; `peak` is the highest reading."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every, self.peak = pid, every, rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mib(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def burst(address: str, image: np.ndarray, calls: int, deadline: float, samples: int) -> dict[str, object]:
    """`calls` concurrent Predicts; per-call latency (s) and status code."""
    latency: dict[int, float] = {}
    codes: dict[int, str] = {}
    kinds: dict[int, str] = {}  # refused by gRPC's concurrent-RPC cap, or by the batcher's admission control
    done = threading.Semaphore(0)
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        # Serialised once: the client's own work per call stays small, so latency is the server's answer
        predict = channel.unary_unary(
            "/ceal.v1.Segmentation/Predict", request_serializer=None, response_deserializer=None
        )
        payload = requests.predict_request(image, samples=samples).SerializeToString()
        predict(payload, timeout=60)  # connection up before the burst
        started: dict[int, float] = {}

        def finished(i: int, future: grpc.Future) -> None:
            latency[i] = time.perf_counter() - started[i]
            exc = future.exception()
            codes[i] = "OK" if exc is None else exc.code().name  # type: ignore[attr-defined]
            if exc is not None:
                kinds[i] = "cap" if "Concurrent RPC limit" in (exc.details() or "") else "admission"  # type: ignore[attr-defined]
            done.release()

        for i in range(calls):
            started[i] = time.perf_counter()
            future = predict.future(payload, timeout=deadline)
            future.add_done_callback(lambda f, i=i: finished(i, f))
        for _ in range(calls):
            done.acquire()
    return {"latency": latency, "codes": codes, "kinds": kinds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=256)
    parser.add_argument("--deadline", type=float, default=5.0, help="each call's deadline, seconds")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (RGB uint8)")
    parser.add_argument("--samples", type=int, default=0, help="T per call (0: the server's default, 20)")
    parser.add_argument("--warmup", type=int, default=16, help="concurrent Predicts (no deadline) before the burst")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ceal-overload-"))
    try:
        _export(workdir / "models")
        server = ServerProcess(workdir / "models", workdir / "state", workdir / "server.log")
        try:
            image = make_case(case_rng(3, 0), args.size, args.size).image
            # Warm-up: a few sequential calls (the service rate gets measured), then `--warmup` concurrent ones
            # without a deadline, so the RPC threads, batch-sized onnxruntime arenas and gRPC buffers exist
            # before the baseline RSS is read (as memory_soak.py reads its baseline after warm-up).
            with grpc.insecure_channel(server.address) as channel:
                stub = segmentation_pb2_grpc.SegmentationStub(channel)
                for i in range(3):
                    stub.Predict(requests.predict_request(image, samples=args.samples, seed=i), timeout=120)
                request = requests.predict_request(image, samples=args.samples)
                warm = [stub.Predict.future(request, timeout=300) for _ in range(args.warmup)]
                warm_codes = Counter(f.exception().code().name if f.exception() else "OK" for f in warm)  # type: ignore[union-attr]
            before = rss_mib(server.proc.pid)
            peak = Peak(server.proc.pid)
            wall = time.perf_counter()
            result = burst(server.address, image, args.calls, args.deadline, args.samples)
            wall = time.perf_counter() - wall
            highest = peak.stop()
            after = rss_mib(server.proc.pid)
            assert server.terminate() == 0
        finally:
            if server.proc.poll() is None:
                server.kill()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    codes: dict[int, str] = result["codes"]  # type: ignore[assignment]
    latency: dict[int, float] = result["latency"]  # type: ignore[assignment]
    counts = Counter(codes.values())
    refused = [latency[i] for i, c in codes.items() if c == "RESOURCE_EXHAUSTED"]
    accepted = [latency[i] for i, c in codes.items() if c == "OK"]
    kinds: dict[int, str] = result["kinds"]  # type: ignore[assignment]
    by_kind = {
        k: [latency[i] for i, c in codes.items() if c == "RESOURCE_EXHAUSTED" and kinds.get(i) == k]
        for k in ("cap", "admission")
    }
    growth = (highest - before) / before * 100.0
    print(f"machine: {machine()}")
    print(f"warm-up: {args.warmup} concurrent calls without deadline: {dict(warm_codes)}")
    print(
        f"{args.calls} concurrent Predicts, {args.size}×{args.size} RGB, T={args.samples or 'default'}, "
        f"deadline {args.deadline:g} s, `ceal serve` defaults; burst took {wall:.2f} s"
    )
    rows = [
        ["accepted (OK)", str(counts.get("OK", 0)), f"p50 {_percentile(accepted, 50) * 1e3:.0f} ms",
         f"max {max(accepted, default=float('nan')) * 1e3:.0f} ms"],
        ["refused (RESOURCE_EXHAUSTED)", str(len(refused)), f"p50 {_percentile(refused, 50) * 1e3:.1f} ms",
         f"p99 {_percentile(refused, 99) * 1e3:.1f} ms"],
        *[
            [f"  refused by {k}", str(len(v)), f"p50 {_percentile(v, 50) * 1e3:.1f} ms",
             f"p99 {_percentile(v, 99) * 1e3:.1f} ms"]
            for k, v in by_kind.items()
        ],
        ["other statuses", str(sum(v for k, v in counts.items() if k not in ("OK", "RESOURCE_EXHAUSTED"))),
         str({k: v for k, v in counts.items() if k not in ("OK", "RESOURCE_EXHAUSTED")}), ""],
        ["server RSS (MiB)", f"before {before:.0f}", f"peak {highest:.0f} (+{growth:.1f} %)", f"after {after:.0f}"],
    ]  # fmt: skip
    print(table(["", "calls", "", ""], rows))
    ok = (
        _percentile(refused, 99) < 0.1
        and growth < 25.0
        and counts.get("OK", 0) + len(refused) == args.calls
        and counts.get("OK", 0) > 0
    )
    print("PASS" if ok else "FAIL", "(p99 refused < 100 ms, RSS growth < 25 %, every accepted call OK)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
