"""A hand-built ONNX model for engine tests: input → 1×1 Conv → Relu → Dropout(0.5) → 1×1 Conv → Sigmoid.

No torch, no training: a large output bias makes a confident model (p ≈ 1 whatever the dropout mask), a
large dropout-facing weight an uncertain one (the mask moves p across 0.5).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ceal.service.engine.loaded import LoadedModel
from ceal.service.metadata import ModelMetadata

SIZE = 8
HIDDEN = 16


def hand_model(out_weight: float, out_bias: float) -> LoadedModel:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(HIDDEN, 1, 1, 1)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.full(HIDDEN, 0.5, np.float32), "b1"),
        numpy_helper.from_array(np.full((1, HIDDEN, 1, 1), out_weight, np.float32), "w2"),
        numpy_helper.from_array(np.array([out_bias], np.float32), "b2"),
        numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
        numpy_helper.from_array(np.array(True), "training"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["h"], name="conv1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Dropout", ["r", "ratio", "training"], ["d"], name="dropout"),
        helper.make_node("Conv", ["d", "w2", "b2"], ["logits"], name="conv2"),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(
        name="hand",
        version=1,
        input_channels=1,
        input_height=SIZE,
        input_width=SIZE,
        num_classes=1,
        mean=0.5,
        std=0.25,
        dropout_rate=0.5,
    )
    return LoadedModel(meta, model.SerializeToString(), intra_op_threads=1)
