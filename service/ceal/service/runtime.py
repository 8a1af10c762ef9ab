"""onnxruntime sessions: providers decided once, Dropout kept alive.

onnxruntime's default graph optimisations include `EliminateDropout`, which deletes Dropout nodes even
when their `training_mode` input is true; every Monte-Carlo sample would then be identical. Every
session ceal creates goes through `make_session`, which disables that rule.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

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
