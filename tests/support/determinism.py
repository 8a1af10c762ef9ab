"""Torch set up to give the same numbers on every run: one intra-op thread, deterministic algorithms.

Tests that train a model decide on figures of that model (Dice, rankings), so the model must not depend on how
many threads happened to split a reduction or on what else the machine is doing. Across CPU models the float
paths still differ (AVX2 vs AVX-512 kernels), which is why such tests also keep wide margins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic_torch(seed: int | None = None) -> Iterator[None]:
    """One intra-op thread and `torch.use_deterministic_algorithms(True)` inside; restored after."""
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # also the fastest on a shared 2-core machine: two spinning threads fight
    torch.use_deterministic_algorithms(True)
    try:
        if seed is not None:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                yield
        else:
            yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)
