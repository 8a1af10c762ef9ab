"""The CUDA path: run a session through IOBinding, so each run copies its inputs to the device once and
its outputs back once, into buffers onnxruntime allocates on the device itself.

`session.run` on the CUDA provider stages every numpy input and output through extra host copies and a
synchronisation per tensor; with IOBinding the inputs are copied straight from the numpy buffers, the
outputs are allocated on the device and fetched in one step. `LoadedModel` uses this only when its provider
is CUDA; the CPU path keeps `session.run` unchanged. The same code runs on the CPU device (`device="cpu"`),
which is how it is tested on machines without a GPU.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

__all__ = ["CUDA_PROVIDER", "device_for", "run_bound"]

CUDA_PROVIDER = "CUDAExecutionProvider"


def device_for(provider: str) -> str | None:
    """The IOBinding device for a session's primary provider: "cuda", or None (plain `session.run`)."""
    return "cuda" if provider == CUDA_PROVIDER else None


def run_bound(
    session: ort.InferenceSession,
    outputs: list[str],
    feeds: dict[str, np.ndarray],
    *,
    device: str = "cuda",
    device_id: int = 0,
) -> list[np.ndarray]:
    """`session.run(outputs, feeds)` through IOBinding: same arrays out, in `outputs` order."""
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_cpu_input(name, np.ascontiguousarray(array))
    for name in outputs:
        binding.bind_output(name, device, device_id)
    binding.synchronize_inputs()
    session.run_with_iobinding(binding)
    binding.synchronize_outputs()
    result: list[np.ndarray] = binding.copy_outputs_to_cpu()
    return result
