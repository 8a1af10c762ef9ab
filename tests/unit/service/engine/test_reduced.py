"""A loaded model run at a reduced input size (`engine/reduced.py`): the exported tiny U-Net runs at 2/3 and
1/2 of its size and gives outputs of that size; a graph that fixes its spatial size is refused, saying so."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from onnx import TensorProto, helper, numpy_helper

from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.engine.reduced import reduced_model, reduced_size, spatial_multiple
from ceal.service.errors import InvalidInput
from ceal.service.metadata import MODEL_FILE, ModelMetadata
from ceal.trainer.export import to_onnx_bytes
from tests.unit.service.engine.conftest import NAME, TinyModel


def test_sizes_round_to_multiples_of_two_to_the_depth() -> None:
    assert reduced_size(192, 240, 0.5, 16) == (96, 128)  # 120 → the nearest multiple of 16
    assert reduced_size(192, 240, 2 / 3, 16) == (128, 160)
    assert reduced_size(48, 64, 0.1, 8) == (8, 8)  # never below one multiple
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(InvalidInput, match=r"scale must be in \(0, 1\]"):
            reduced_size(192, 240, bad, 16)


def test_the_multiple_comes_from_the_metadata_or_the_graph(loaded_model: LoadedModel, tiny_model: TinyModel) -> None:
    import onnx

    graph = onnx.load(tiny_model.directory / MODEL_FILE)
    assert spatial_multiple(loaded_model.meta) == 8  # extra["unet"]: depth 3
    unrecorded = ModelMetadata(**{**loaded_model.meta.__dict__, "extra": {}})
    assert spatial_multiple(unrecorded, graph) == 8  # three MaxPools
    assert spatial_multiple(unrecorded) == 1


@pytest.mark.parametrize(("scale", "size"), [(2 / 3, (32, 40)), (0.5, (24, 32))])
def test_the_tiny_unet_runs_at_the_reduced_size(
    loaded_model: LoadedModel, tiny_model: TinyModel, scale: float, size: tuple[int, int]
) -> None:
    small = reduced_model(loaded_model, (tiny_model.directory / MODEL_FILE).read_bytes(), scale)
    assert (small.meta.input_height, small.meta.input_width) == size
    assert small.key == loaded_model.key  # scores are stored under the same version
    assert small.meta.preprocessing is not None and small.meta.preprocessing.height == size[0]
    x = _inputs(tiny_model, small)
    assert x.shape == (2, 3, *size)
    out = small.sample(x, 3, np.random.default_rng(0))
    assert out.probabilities.shape == (2, 3, 1, *size)
    assert np.isfinite(out.probabilities).all() and out.probabilities.std() > 0  # dropout live: samples differ
    full = loaded_model.sample(_inputs(tiny_model, loaded_model), 4, np.random.default_rng(0))
    assert out.descriptors.shape == full.descriptors.shape  # the bottleneck's channels, pooled
    # the same weights: the trainer's own export at the reduced size gives the same samples from the same masks
    exported = LoadedModel(small.meta, to_onnx_bytes(tiny_model.unet, *size, mc_dropout=True), intra_op_threads=1)
    again = exported.sample(x, 3, np.random.default_rng(0))
    np.testing.assert_allclose(out.probabilities, again.probabilities, atol=1e-5)
    np.testing.assert_allclose(out.descriptors, again.descriptors, rtol=1e-4, atol=1e-5)


def _inputs(tiny_model: TinyModel, model: LoadedModel) -> npt.NDArray[np.float32]:
    return np.stack([prepare(image, model.meta) for image in tiny_model.images[:2]])


def test_a_scale_that_rounds_back_to_the_full_size_is_refused(loaded_model: LoadedModel, tiny_model: TinyModel) -> None:
    with pytest.raises(InvalidInput, match="does not reduce the input"):
        reduced_model(loaded_model, (tiny_model.directory / MODEL_FILE).read_bytes(), 0.95)


def _fixed_size_graph() -> tuple[LoadedModel, bytes]:
    """A 1×1-conv model whose Reshape to constant shapes pins its 8×8 size: it cannot run at 4×4."""
    size, hidden = 8, 4
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(hidden, 1, 1, 1)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.ones((1, hidden, 1, 1), np.float32), "w2"),
        numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
        numpy_helper.from_array(np.array(True), "training"),
        numpy_helper.from_array(np.array([-1, hidden * size * size], np.int64), "flat"),
        numpy_helper.from_array(np.array([-1, hidden, size, size], np.int64), "square"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["h"]),
        helper.make_node("Reshape", ["h", "flat"], ["f"]),
        helper.make_node("Reshape", ["f", "square"], ["s"]),
        helper.make_node("Dropout", ["s", "ratio", "training"], ["d"]),
        helper.make_node("Conv", ["d", "w2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fixed",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 1, size, size])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(
        name="fixed",
        version=3,
        input_channels=1,
        input_height=size,
        input_width=size,
        num_classes=1,
        mean=0.5,
        std=0.25,
        dropout_rate=0.5,
        extra={"unet": json.dumps({"depth": 2})},
    )
    data = model.SerializeToString()
    return LoadedModel(meta, data, intra_op_threads=1), data


def test_a_graph_that_fixes_its_size_is_refused_saying_so() -> None:
    model, data = _fixed_size_graph()
    with pytest.raises(InvalidInput, match=r"fixed v3 at 4×4 .*fixes the spatial size; re-export it"):
        reduced_model(model, data, 0.5)


def test_a_pool_is_scored_through_the_gate_on_the_real_engine(
    loaded_model: LoadedModel, tiny_model: TinyModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The served path end to end: the tiny U-Net's version calibrates on a 12-image pool (its own folder's
    model file, made symbolic), decides, and every image gets a fresh score under the version."""
    from ceal.service.engine.batcher import DynamicBatcher
    from ceal.service.engine.core import Engine
    from ceal.service.pool.resolution import ResolutionGate
    from ceal.service.pool.scoring import PoolScorer, SamplingPlan
    from ceal.service.store import NewImage, open_store

    engine = Engine(DynamicBatcher(max_delay=0.0))
    gate = ResolutionGate(0.5)
    try:
        with open_store(str(tmp_path)) as store, caplog.at_level(logging.INFO, "ceal.service.pool.resolution"):
            ids = [i for i, _ in store.register_images("p", [NewImage(im) for im in tiny_model.images[:12]])]
            last = list(PoolScorer(store, engine, resolution=gate).score("p", loaded_model, SamplingPlan(4)))[-1]
            assert last.finished and store.counts("p", NAME, 1).scored_fresh == 12
    finally:
        engine.batcher.close()
    decision = gate.decision(NAME, 1)
    assert decision is not None and decision.images == 12 and np.isfinite(decision.rho)
    assert decision.reduced == (decision.rho >= 0.95)
    assert decision.model.meta.input_height == (24 if decision.reduced else 48)
    assert "24×32 for 48×64" in caplog.text and not any(i in caplog.text for i in ids)
