"""Memory soak: the server's resident memory over a long run of requests. Not a test; prints a figure.

    .venv/bin/python benchmarks/memory_soak.py [--requests 2000] [--every 200] [--threads 2] [--samples 8]
                                               [-- extra `ceal serve` flags, e.g. --otel console]

`ceal serve` runs in a subprocess on 127.0.0.1 (a U-Net exported the way users export theirs); this process
sends Predicts from a few threads: images of varying sizes (so the resize and codec paths allocate different
shapes), every 10th one PNG-encoded, every 25th one invalid (INVALID_ARGUMENT), some with a deadline the
server cannot meet (the engine gives up) and, after each checkpoint, a burst of cancelled calls. The server's
RSS (VmRSS in /proc) is read at every checkpoint. The growth ratio is the last reading over the first one
after warm-up (the first checkpoint: allocator pools, onnxruntime arenas and gRPC buffers are sized by then);
a leak of even 1 KiB per request would show as +2 MiB over 2,000 requests.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import numpy as np
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, table
from ceal.client import requests
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.unet import UNet, UNetConfig
from ceal.v1 import segmentation_pb2_grpc
from tests.support.server import ServerProcess

MODEL = UNetConfig(base_filters=16, depth=4)  # `ceal train`'s default model
SIZE = (96, 128)  # model input


def rss_mib(pid: int) -> float:
    """Resident set size of process `pid` in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _images(count: int) -> list[np.ndarray]:
    sizes = [(64, 80), (96, 128), (150, 200), (192, 256), (240, 320)]
    return [make_case(case_rng(5, i), *sizes[i % len(sizes)]).image for i in range(count)]


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


class Load:
    """Sends request i of the run; counts outcomes by status code."""

    def __init__(self, stub: segmentation_pb2_grpc.SegmentationStub, samples: int) -> None:
        self.stub, self.samples = stub, samples
        self.images = _images(25)
        self.pngs = [_png(p) for p in self.images[:5]]
        self.codes: dict[str, int] = {}
        self.lock = threading.Lock()

    def one(self, i: int) -> None:
        timeout = 60.0
        if i % 25 == 7:
            request = requests.predict_request(np.zeros((2, 8, 8, 3), np.uint8), samples=self.samples)  # invalid
        elif i % 10 == 3:
            request = requests.predict_request(self.pngs[i % len(self.pngs)], samples=self.samples)
        else:
            request = requests.predict_request(self.images[i % len(self.images)], samples=self.samples, seed=i)
            if i % 50 == 11:
                timeout = 0.001  # a deadline no call can meet
        try:
            self.stub.Predict(request, timeout=timeout)
            code = "OK"
        except grpc.RpcError as err:
            code = err.code().name
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1

    def run(self, indices: list[int]) -> None:
        for i in indices:
            self.one(i)

    def cancelled_burst(self, n: int) -> None:
        calls = [
            self.stub.Predict.future(requests.predict_request(self.images[k], samples=self.samples), timeout=60)
            for k in range(n)
        ]
        for call in calls:
            call.cancel()
        with self.lock:
            self.codes["CANCELLED (burst)"] = self.codes.get("CANCELLED (burst)", 0) + n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--every", type=int, default=200, help="requests between RSS readings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=8, help="Monte-Carlo samples T per request")
    parser.add_argument("serve_args", nargs="*", help="extra `ceal serve` flags (after --)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ceal-soak-"))
    export_model(UNet(MODEL), {"train_config": {"height": SIZE[0], "width": SIZE[1]}}, work / "models", "lesion")
    server = ServerProcess(work / "models", work / "state", work / "server.log", *args.serve_args)
    pid = server.proc.pid
    print(
        f"# memory soak: {machine()}; U-Net base {MODEL.base_filters} depth {MODEL.depth} at {SIZE[0]}×{SIZE[1]}, "
        f"T = {args.samples}, {args.requests} Predicts from {args.threads} threads; serve flags: "
        f"{' '.join(args.serve_args) or '(none)'}",
        flush=True,
    )
    rows: list[tuple[int, float, float]] = []
    started = time.perf_counter()
    try:
        with grpc.insecure_channel(server.address) as channel:
            load = Load(segmentation_pb2_grpc.SegmentationStub(channel), args.samples)
            rows.append((0, rss_mib(pid), 0.0))
            print(f"requests {0:>6}  rss {rows[-1][1]:8.1f} MiB  (loaded, idle)", flush=True)
            for done in range(0, args.requests, args.every):
                batch = list(range(done, min(done + args.every, args.requests)))
                threads = [
                    threading.Thread(target=load.run, args=(batch[t :: args.threads],)) for t in range(args.threads)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                load.cancelled_burst(4)
                rows.append((batch[-1] + 1, rss_mib(pid), time.perf_counter() - started))
                print(f"requests {rows[-1][0]:>6}  rss {rows[-1][1]:8.1f} MiB  ({rows[-1][2]:.0f} s)", flush=True)
    finally:
        code = server.terminate(timeout=120) if server.proc.poll() is None else server.proc.returncode
        shutil.rmtree(work, ignore_errors=True)
    warm, last = rows[1][1], rows[-1][1]
    peak = max(r[1] for r in rows)
    print()
    print(table(["requests", "RSS MiB", "elapsed s"], [(n, rss, t) for n, rss, t in rows]))
    print(f"\noutcomes: {load.codes}")
    print(f"RSS after warm-up ({rows[1][0]} requests): {warm:.1f} MiB; at the end: {last:.1f} MiB; peak {peak:.1f} MiB")
    print(
        f"growth ratio (end / after warm-up): {last / warm:.3f}; per request after warm-up: "
        f"{(last - warm) * 1024 / max(rows[-1][0] - rows[1][0], 1):.2f} KiB; server exit code {code}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
