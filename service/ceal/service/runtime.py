"""onnxruntime sessions: providers decided once, Dropout kept alive, intra-op threads fitted to the CPU quota.

onnxruntime's default graph optimisations include `EliminateDropout`, which deletes Dropout nodes even
when their `training_mode` input is true; every Monte-Carlo sample would then be identical. Every
session ceal creates goes through `make_session`, which disables that rule.

Threads: onnxruntime's default is one intra-op thread per physical core *of the node*, whatever the container
may use; in a pod limited to 2 CPUs on a 64-core node that is 64 threads fighting for 2 CPUs' worth of CFS
quota (throttling, tail latency). `choose_threads` takes `--threads` when given, else the cgroup CPU limit
(v2 `cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`, rounded down, at least 1), else the CPUs this
process may run on; the server logs the choice and why in one line.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")

DISABLED_OPTIMIZERS = ["EliminateDropout"]


@dataclass(frozen=True)
class Providers:
    """The execution providers every session uses, in priority order, and why."""

    names: tuple[str, ...]
    reason: str

    @property
    def primary(self) -> str:
        return self.names[0]


def _cuda_usable() -> tuple[bool, str]:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False, "this onnxruntime build has no CUDA provider"
    if os.environ.get("CEAL_DEVICE", "").lower() == "cpu":
        return False, "CEAL_DEVICE=cpu"
    # The CUDA provider is compiled in, but it needs a driver and the CUDA libraries at run time;
    # asking for it without them logs a loud error per session, so probe for the driver first.
    if not any(Path(p).exists() for p in ("/dev/nvidiactl", "/proc/driver/nvidia/version")):
        return False, "no NVIDIA driver found"
    try:
        ort.preload_dlls()
    except Exception as exc:
        return False, f"CUDA libraries could not be loaded ({type(exc).__name__})"
    return True, "NVIDIA driver and CUDA libraries found"


@cache
def select_providers() -> Providers:
    """Decide once per process: CUDA when a GPU is usable, CPU otherwise; logged in one line."""
    usable, why = _cuda_usable()
    names = ("CUDAExecutionProvider", "CPUExecutionProvider") if usable else ("CPUExecutionProvider",)
    providers = Providers(names, why)
    log.info("onnxruntime %s: using %s (%s)", ort.__version__, providers.primary, why)
    return providers


def make_session(
    model: Path | bytes, *, intra_op_threads: int = 0, providers: Providers | None = None
) -> ort.InferenceSession:
    """An InferenceSession with Dropout kept (EliminateDropout disabled) on the selected providers.

    `intra_op_threads` 0 lets onnxruntime use one thread per physical core.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = intra_op_threads
    opts.log_severity_level = 3
    chosen = providers or select_providers()
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(
        source, sess_options=opts, providers=list(chosen.names), disabled_optimizers=DISABLED_OPTIMIZERS
    )


@dataclass(frozen=True)
class ThreadChoice:
    """Intra-op threads per onnxruntime session, and the reason (for the log line)."""

    threads: int
    reason: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> tuple[float, str] | None:
    """The CPU limit of this process's cgroup in CPUs, and where it was read; None when unlimited or unknown.

    cgroup v2: `<root>/cpu.max` holds "QUOTA PERIOD" (µs) or "max PERIOD". cgroup v1: `<root>/cpu/cpu.cfs_quota_us`
    (-1 = unlimited) and `cpu.cfs_period_us` (also under `cpu,cpuacct/`). Inside a container the root is the
    container's own cgroup, which is what Docker's `--cpus` and a Kubernetes CPU limit set.
    """
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            if quota > 0 and period > 0:
                return quota / period, f"cgroup v2 cpu.max {quota} {period}"
        return None
    for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota_text = _read(root / folder / "cpu.cfs_quota_us")
        period_text = _read(root / folder / "cpu.cfs_period_us")
        if quota_text is None or period_text is None:
            continue
        try:
            quota, period = int(quota_text), int(period_text)
        except ValueError:
            return None
        if quota > 0 and period > 0:
            return quota / period, f"cgroup v1 cpu.cfs_quota_us {quota} / cpu.cfs_period_us {period}"
        return None
    return None


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def choose_threads(requested: int | None = None, *, cgroup_root: Path = CGROUP_ROOT) -> ThreadChoice:
    """`--threads` when given (> 0), else floor(cgroup CPU limit) capped by the usable CPUs, else those CPUs."""
    if requested is not None and requested > 0:
        return ThreadChoice(requested, "--threads")
    cpus = usable_cpus()
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus_allowed, source = limit
        threads = max(1, min(cpus, math.floor(cpus_allowed)))
        return ThreadChoice(threads, f"{source} = {cpus_allowed:g} CPUs, {cpus} usable")
    return ThreadChoice(cpus, f"no cgroup CPU limit; {cpus} usable CPUs")
