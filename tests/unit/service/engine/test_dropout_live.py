"""Must-show: these tests fail if onnxruntime's Dropout elimination is left on.

onnxruntime's default graph optimisations delete Dropout even when its `training_mode` input is true, so
every Monte-Carlo sample comes out the same. `runtime.make_session` disables that rule; the tests below
show its sessions sample, and that a session with the default optimisations does not, so the checks can
fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest

from ceal.service import runtime
from ceal.service.engine.loaded import LoadedModel
from ceal.service.metadata import MODEL_FILE
from tests.unit.service.engine.conftest import THREADS, TinyModel

F32 = npt.NDArray[np.float32]
NOISE = 1e3 * float(np.finfo(np.float32).eps)  # a sample spread (probability units) beyond float rounding


def _default_session(model: Path) -> ort.InferenceSession:
    """What onnxruntime gives without ceal's runtime: all optimisations, none disabled."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = THREADS
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def _mc_spread(session: ort.InferenceSession, x: F32, samples: int) -> float:
    """Largest per-pixel max − min over `samples` runs of the whole model on one image x (1, C, H, W).

    Separate runs, not one batch of copies (rows of one batch may differ in the last bit); the range, not
    the variance (float32 variance of equal values need not be exactly 0).
    """
    name = session.get_inputs()[0].name
    out = np.concatenate([session.run(None, {name: x})[0] for _ in range(samples)])
    return float(np.ptp(out, axis=0).max())


def _dropouts(path: Path) -> int:
    return sum(node.op_type == "Dropout" for node in onnx.load(str(path)).graph.node)


def test_make_session_samples_differ_run_to_run(tiny_model: TinyModel, model_inputs: F32) -> None:
    session = runtime.make_session(tiny_model.directory / MODEL_FILE, intra_op_threads=THREADS)
    first, second = (session.run(None, {"image": model_inputs})[0] for _ in range(2))
    assert np.abs(first - second).max() > 0
    assert _mc_spread(session, model_inputs[:1], 16) > 0


def test_served_whole_model_mc_has_variance(loaded_model: LoadedModel, model_inputs: F32) -> None:
    samples = loaded_model.sample_whole(model_inputs, 16)  # (N, T, C, H, W): T copies in one batch
    # Rows of one batch may differ in the last bit even without dropout: ask for far more than that.
    std = np.sqrt(samples.var(axis=1)).max(axis=(1, 2, 3))  # per image
    assert std.min() > NOISE


def test_default_optimisations_make_every_sample_identical(tiny_model: TinyModel, model_inputs: F32) -> None:
    """The counter-test: without `make_session`, the checks above fail."""
    session = _default_session(tiny_model.directory / MODEL_FILE)
    first, second = (session.run(None, {"image": model_inputs})[0] for _ in range(2))
    assert np.array_equal(first, second)
    assert _mc_spread(session, model_inputs[:1], 16) == 0


@pytest.fixture
def optimised_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where every session created in the test writes its optimised graph (SessionOptions patched)."""
    path = tmp_path / "optimised.onnx"
    real = ort.SessionOptions

    def options() -> ort.SessionOptions:
        opts = real()
        opts.optimized_model_filepath = str(path)
        return opts

    monkeypatch.setattr(ort, "SessionOptions", options)
    return path


def test_make_session_optimised_graph_keeps_the_dropout(tiny_model: TinyModel, optimised_path: Path) -> None:
    model = tiny_model.directory / MODEL_FILE
    assert _dropouts(model) == 1
    runtime.make_session(model, intra_op_threads=THREADS)  # make_session's own options, graph written out
    assert _dropouts(optimised_path) == 1


def test_default_optimised_graph_has_no_dropout(tiny_model: TinyModel, optimised_path: Path) -> None:
    _default_session(tiny_model.directory / MODEL_FILE)
    assert _dropouts(optimised_path) == 0
