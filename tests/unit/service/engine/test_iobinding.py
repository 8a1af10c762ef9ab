"""The IOBinding path (used on CUDA) gives exactly what `session.run` gives; checked on the CPU device."""

from __future__ import annotations

import numpy as np

from ceal.service.engine.iobinding import device_for, run_bound
from tests.unit.service.engine.hand_model import SIZE, hand_model


def test_run_bound_matches_session_run() -> None:
    model = hand_model(1.0, -1.0)
    x = np.random.default_rng(0).normal(size=(3, 1, SIZE, SIZE)).astype(np.float32)
    names = [o.name for o in model.prefix.get_outputs()]
    want = model.prefix.run(names, {model.split.prefix_input: x})
    got = run_bound(model.prefix, names, {model.split.prefix_input: x}, device="cpu")
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_loaded_model_through_iobinding_samples_the_same() -> None:
    plain, bound = hand_model(1.0, -1.0), hand_model(1.0, -1.0)
    bound.device = "cpu"  # what the CUDA provider sets to "cuda"
    x = np.random.default_rng(1).normal(size=(2, 1, SIZE, SIZE)).astype(np.float32)
    a = plain.sample(x, 5, np.random.default_rng(2)).probabilities
    b = bound.sample(x, 5, np.random.default_rng(2)).probabilities
    assert a.shape == (2, 5, 1, SIZE, SIZE)
    np.testing.assert_array_equal(a, b)


def test_only_cuda_uses_iobinding() -> None:
    assert device_for("CUDAExecutionProvider") == "cuda"
    assert device_for("CPUExecutionProvider") is None
    model = hand_model(1.0, 0.0)
    assert model.device == device_for(model.provider)
