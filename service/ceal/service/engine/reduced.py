"""Run a loaded model at a reduced input size: the same weights on a smaller image.

A U-Net is fully convolutional, so its weights run at any input whose sides are multiples of 2^depth (each
level halves the sides; the decoder's skip connections need them to halve exactly). The exported graphs fix
the spatial axes of their input and output (only the batch axis is dynamic, `trainer/ceal/trainer/export.py`);
`symbolic_spatial` rewrites them to symbolic `height` / `width` (`onnx.tools.update_model_dims`) and drops
the intermediate shapes recorded at the export size. A graph that fixes the spatial size inside (a Reshape or
Resize to constant shapes, a crop to constant bounds) cannot run at another size, and the service cannot
re-export it: `reduced_model` then raises InvalidInput saying so.

The reduced model is a `LoadedModel` of its own (same name and version, metadata with the reduced input size),
so preprocessing, the prefix/suffix split, the dropout masks and the image scores all follow from the reduced
size the way they do for the full one; its trial inference checks it gives outputs of the reduced size.
"""

from __future__ import annotations

import dataclasses
import json
import math

import onnx
from onnx.tools import update_model_dims

from ceal.service.engine.loaded import LoadedModel, trial_inference
from ceal.service.errors import InvalidInput
from ceal.service.metadata import ModelMetadata

__all__ = ["reduced_metadata", "reduced_model", "reduced_size", "spatial_multiple", "symbolic_spatial"]

DOWNSAMPLING_OPS = ("MaxPool", "AveragePool")  # the U-Net halves its sides with these (kernel 2, stride 2)


def spatial_multiple(meta: ModelMetadata, graph: onnx.ModelProto | None = None) -> int:
    """What the input's sides must be multiples of: 2^depth of the U-Net the metadata records
    (`extra["unet"]`, written by the export), else 2^(downsampling nodes of `graph`), else 1."""
    unet = meta.extra.get("unet")
    if isinstance(unet, str):
        try:
            unet = json.loads(unet)
        except json.JSONDecodeError:
            unet = None
    if isinstance(unet, dict) and isinstance(unet.get("depth"), int) and unet["depth"] >= 0:
        return int(2 ** unet["depth"])
    if graph is None:
        return 1
    return int(2 ** sum(1 for node in graph.graph.node if node.op_type in DOWNSAMPLING_OPS))


def reduced_size(height: int, width: int, scale: float, multiple: int) -> tuple[int, int]:
    """(height, width) × `scale`, each side rounded to the nearest multiple of `multiple` (at least one).

    1/2 of 192×240 with a multiple of 16 is 96×128 (120 rounds up to 128); 2/3 of it is 128×160."""
    if not (math.isfinite(scale) and 0.0 < scale <= 1.0):
        raise InvalidInput(f"the reduced-size scale must be in (0, 1], got {scale}")
    if multiple < 1:
        raise InvalidInput(f"the size multiple must be at least 1, got {multiple}")

    def side(value: int) -> int:
        return max(1, math.floor(value * scale / multiple + 0.5)) * multiple

    return side(height), side(width)


def reduced_metadata(meta: ModelMetadata, height: int, width: int) -> ModelMetadata:
    """The metadata of the same model fed at height × width (preprocessing contract included)."""
    params = meta.preprocessing
    if params is not None:
        params = dataclasses.replace(params, height=height, width=width)
    return dataclasses.replace(meta, input_height=height, input_width=width, preprocessing=params)


def symbolic_spatial(model_bytes: bytes, meta: ModelMetadata) -> bytes:
    """The graph with symbolic height and width on its input and output (batch axis kept), the shapes it
    recorded for intermediate tensors at the export size dropped. Raises InvalidInput when the graph is not
    a (N, C, H, W) → (N, K, H, W) model."""
    model = onnx.load_from_string(model_bytes)
    if len(model.graph.input) != 1 or len(model.graph.output) < 1:
        raise InvalidInput("a reduced-size model needs a graph with one image input and an output")
    dims: dict[str, list[int | str]] = {}
    for info in (model.graph.input[0], model.graph.output[0]):
        shape = info.type.tensor_type.shape.dim
        if len(shape) != 4:
            raise InvalidInput(
                f"{meta.name} v{meta.version}: graph tensor {info.name!r} has {len(shape)} axes, not (N, C, H, W); "
                "it cannot be run at a reduced size"
            )
        batch = shape[0].dim_param or (shape[0].dim_value if shape[0].HasField("dim_value") else "batch")
        channels = shape[1].dim_value if shape[1].HasField("dim_value") else -1
        dims[info.name] = [batch, channels, "height", "width"]
    inputs = {model.graph.input[0].name: dims[model.graph.input[0].name]}
    outputs = {model.graph.output[0].name: dims[model.graph.output[0].name]}
    del model.graph.value_info[:]  # recorded at the export size: would contradict the new one
    try:
        updated = update_model_dims.update_inputs_outputs_dims(model, inputs, outputs)
    except ValueError as exc:
        raise InvalidInput(f"{meta.name} v{meta.version}: cannot make its spatial axes symbolic ({exc})") from exc
    return updated.SerializeToString()


def reduced_model(model: LoadedModel, model_bytes: bytes, scale: float) -> LoadedModel:
    """`model` (loaded from `model_bytes`) run at its input size × `scale`, sides rounded to multiples of
    2^depth (`reduced_size`): a `LoadedModel` with the same name and version whose metadata gives the reduced
    input size, checked by a trial inference. Raises InvalidInput, saying why, when the graph cannot run at
    that size (the service cannot re-export a model; the trainer's export can)."""
    meta = model.meta
    graph = onnx.load_from_string(model_bytes)
    multiple = spatial_multiple(meta, graph)
    height, width = reduced_size(meta.input_height, meta.input_width, scale, multiple)
    where = f"{meta.name} v{meta.version} at {height}×{width} (× {scale:g} of {meta.input_height}×{meta.input_width})"
    if (height, width) == (meta.input_height, meta.input_width):
        raise InvalidInput(f"{where}: the scale does not reduce the input once rounded to multiples of {multiple}")
    small = reduced_metadata(meta, height, width)
    try:
        reduced = LoadedModel(
            small, symbolic_spatial(model_bytes, meta), intra_op_threads=model.intra_op_threads, source=model.source
        )
        trial_inference(reduced)
    except Exception as exc:
        cause = (str(exc).splitlines() or [""])[0][:300]  # onnxruntime's messages run to several lines
        raise InvalidInput(
            f"{where} does not run ({type(exc).__name__}: {cause}): its graph fixes the spatial size; re-export it "
            "with the trainer (`ceal export`) to score it at a reduced size, or leave the scale at 1"
        ) from exc
    return reduced
