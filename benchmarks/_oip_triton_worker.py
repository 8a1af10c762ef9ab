"""tritonclient side of oip_bench.py; runs in the tritonclient venv (no ceal on its path).

    python _oip_triton_worker.py URL IMAGE.npy CONCURRENCY SECONDS SAMPLES

C threads, each with its own InferenceServerClient, call `infer` back to back for SECONDS after one warm-up
call each; prints one JSON line: requests, throughput (req/s) and latency quantiles (ms).
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time

import numpy as np
import tritonclient.grpc as grpcclient


def main() -> None:
    url, image_path, concurrency, seconds, samples = sys.argv[1:6]
    c, duration = int(concurrency), float(seconds)
    image = np.load(image_path)
    latencies: list[list[float]] = [[] for _ in range(c)]
    warmed, go = threading.Barrier(c + 1), threading.Barrier(c + 1)
    stop_at = [0.0]

    def worker(k: int) -> None:
        client = grpcclient.InferenceServerClient(url=url)
        outputs = [grpcclient.InferRequestedOutput(n) for n in ("probability", "label_map", "entropy", "score")]

        def call(seed: int) -> None:
            inp = grpcclient.InferInput("image", list(image.shape), "UINT8")
            inp.set_data_from_numpy(image)
            client.infer("lesion", [inp], outputs=outputs, parameters={"samples": int(samples), "seed": seed})

        call(k)
        warmed.wait()
        go.wait()
        i = 0
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            call(k * 100_000 + i)
            latencies[k].append(time.perf_counter() - began)
            i += 1
        client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(c)]
    for t in threads:
        t.start()
    warmed.wait()
    began = time.perf_counter()
    stop_at[0] = began + duration
    go.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x * 1000 for xs in latencies for x in xs)
    q = statistics.quantiles(flat, n=100) if len(flat) >= 2 else [flat[0]] * 99
    print(
        json.dumps({"requests": len(flat), "throughput": len(flat) / elapsed, "p50": q[49], "p95": q[94], "p99": q[98]})
    )


if __name__ == "__main__":
    main()
