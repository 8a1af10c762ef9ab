"""Helpers shared by the benchmarks: medians, the machine's sgemm rate, peak RSS, plain-text tables."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls of `fn`."""
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The machine's measured fp32 matmul rate (numpy, all threads), GFLOP/s: median of `repeats`."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool and page faults
    seconds = timed(lambda: a @ b, repeats)
    return 2.0 * n**3 / median(seconds) / 1e9


def peak_rss_mib() -> float:
    """This process's resident-set high-water mark in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    """One line: CPU model, cores, int8 dot-product support; for the header of every report."""
    model, flags = platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
    except OSError:
        info = ""
    for line in info.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = line + " "
    vnni = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8") if f" {f} " in flags]
    cores = os.cpu_count() or 0
    return f"{model}, {cores} cores, int8 dot product: {', '.join(vnni) or 'none (no VNNI)'}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text)."""

    def cell(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
