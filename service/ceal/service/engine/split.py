"""Split an ONNX model at its first Dropout: a deterministic prefix and a stochastic suffix.

The prefix (everything that does not depend on a Dropout's output) runs once per image; the suffix runs
on T copies of the prefix's outputs in one batch. Every Dropout in the suffix becomes `Mul(x, mask)` with
the mask a new graph input, so the engine draws the masks itself — seeded when asked, the same on every
execution provider, and immune to onnxruntime's Dropout elimination. The masks follow Dropout's own
definition (keep with probability 1 − ratio, kept values scaled by 1 / (1 − ratio)), so the split model
samples exactly the distribution of running the whole model T times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ceal.service.errors import InvalidInput


@dataclass(frozen=True)
class DropoutSite:
    """One Dropout turned into a mask input: the mask's input name, its shape without batch, its ratio."""

    mask_input: str
    shape: tuple[int, ...]
    ratio: float


@dataclass(frozen=True)
class SplitModel:
    """Serialised prefix and suffix graphs and how to feed them."""

    prefix: bytes
    suffix: bytes
    prefix_input: str
    prefix_outputs: tuple[str, ...]  # fed to the suffix under the same names, tiled T times
    suffix_output: str
    sites: tuple[DropoutSite, ...]
    descriptor: str  # the first Dropout's input (the encoder bottleneck), pooled into retrieval features


def _constant_value(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def _dropout_ratio(model: onnx.ModelProto, node: onnx.NodeProto) -> float:
    if len(node.input) > 1 and node.input[1]:
        value = _constant_value(model, node.input[1])
        if value is None:
            raise InvalidInput(f"Dropout {node.name!r} has a ratio that is not a constant; export it as a constant")
        return float(value)
    for attr in node.attribute:
        if attr.name == "ratio":
            return float(attr.f)
    return 0.5


def _shapes(model: onnx.ModelProto, height: int, width: int, channels: int) -> dict[str, tuple[int, ...]]:
    """Static shapes (batch axis dropped) of every tensor, inferred for one (C, H, W) input."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims[1:], (channels, height, width), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    inferred = shape_inference.infer_shapes(fixed, data_prop=True)
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims_ = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims_[1:]):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims_[1:])
    return shapes


def _reachable(nodes: list[onnx.NodeProto], seeds: set[str]) -> tuple[set[int], set[str]]:
    """Indices of nodes downstream of `seeds` (topological order assumed) and the tensors they make."""
    tensors, hit = set(seeds), set()
    for i, node in enumerate(nodes):
        if any(x in tensors for x in node.input if x):
            hit.add(i)
            tensors.update(node.output)
    return hit, tensors


def _prune(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """Keep only nodes needed for `outputs` (walking backwards)."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(x for x in node.input if x)
    return kept[::-1]


def _make(
    model: onnx.ModelProto,
    name: str,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
) -> bytes:
    used = {x for n in nodes for x in n.input}
    inits = [i for i in model.graph.initializer if i.name in used]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    out = helper.make_model(graph, opset_imports=model.opset_import, producer_name="ceal-split")
    out.ir_version = model.ir_version
    return out.SerializeToString()


def _tensor_info(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", *shape])


def split_model(model_bytes: bytes, height: int, width: int, channels: int) -> SplitModel:
    """Split at the first Dropout; raises InvalidInput when the model has no Dropout to sample with."""
    model = onnx.load_from_string(model_bytes)
    nodes = list(model.graph.node)
    drop_idx = [i for i, n in enumerate(nodes) if n.op_type == "Dropout"]
    if not drop_idx:
        raise InvalidInput("the model has no Dropout node: Monte-Carlo sampling needs dropout kept in the export")
    graph_input = model.graph.input[0].name
    graph_output = model.graph.output[0].name
    shapes = _shapes(model, height, width, channels)
    stochastic_seeds = {nodes[i].output[0] for i in drop_idx}
    stochastic_idx, _ = _reachable(nodes, stochastic_seeds)
    input_dependent_idx, _ = _reachable(nodes, {graph_input})
    # The suffix: every stochastic node; the Dropouts themselves become Mul by a mask input.
    sites: list[DropoutSite] = []
    suffix_nodes: list[onnx.NodeProto] = []
    for i, node in enumerate(nodes):
        if node.op_type == "Dropout":
            data = node.input[0]
            if data not in shapes:
                raise InvalidInput(f"the shape of Dropout {node.name!r}'s input could not be inferred")
            mask = f"ceal_mask_{len(sites)}"
            sites.append(DropoutSite(mask, shapes[data], _dropout_ratio(model, node)))
            suffix_nodes.append(helper.make_node("Mul", [data, mask], [node.output[0]], name=f"{node.name}_mask"))
        elif i in stochastic_idx or i not in input_dependent_idx:
            suffix_nodes.append(node)  # constants are copied into both halves; pruning drops the unused
    suffix_nodes = _prune(suffix_nodes, {graph_output})
    suffix_made = {o for n in suffix_nodes for o in n.output}
    prefix_pool = [n for i, n in enumerate(nodes) if i not in stochastic_idx and n.op_type != "Dropout"]
    prefix_made = {o for n in prefix_pool for o in n.output} | {graph_input}
    mask_names = {s.mask_input for s in sites}
    feeds = sorted(
        {
            x
            for n in suffix_nodes
            for x in n.input
            if x and x not in suffix_made and x not in mask_names and x in prefix_made
        }
    )
    for name in feeds:
        if name not in shapes:
            raise InvalidInput(f"the shape of {name!r} could not be inferred; cannot split this model")
    descriptor = nodes[drop_idx[0]].input[0]
    prefix_outputs = sorted(set(feeds) | {descriptor})
    prefix_nodes = _prune(prefix_pool, set(prefix_outputs))
    prefix = _make(
        model, "ceal_prefix", prefix_nodes, [model.graph.input[0]], [_tensor_info(n, shapes[n]) for n in prefix_outputs]
    )
    suffix_inputs = [_tensor_info(n, shapes[n]) for n in feeds] + [_tensor_info(s.mask_input, s.shape) for s in sites]
    suffix = _make(model, "ceal_suffix", suffix_nodes, suffix_inputs, [model.graph.output[0]])
    return SplitModel(prefix, suffix, graph_input, tuple(feeds), graph_output, tuple(sites), descriptor)


def _keep(site: DropoutSite, rows: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, *shape) keep decisions (True = kept, probability 1 − ratio) from float32 uniforms: the stream every
    ceal release has drawn, so a seed gives the samples it gave before (tests/integration/test_legacy_model.py).
    One random bit a unit would be 3-8× cheaper at ratio 0.5 (54 → 17 ms for 4 rows of 32×192×240) but changes
    every seeded output; it waits for a release that may change them."""
    return rng.random((rows, *site.shape), dtype=np.float32) < np.float32(1.0 - site.ratio)


def draw_masks(sites: tuple[DropoutSite, ...], rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Dropout masks for `rows` samples: keep with probability 1 − ratio, scaled by 1 / (1 − ratio).

    Drawn sample by sample (every site of sample t before any of sample t + 1), so one generator gives the same
    masks however the samples are cut into suffix chunks (`LoadedModel.max_rows`): a seed means the same
    samples on any machine and chunk size.
    """
    if len(sites) == 1:  # one site: a single draw of (rows, ...) is already sample by sample
        keep = {sites[0].mask_input: _keep(sites[0], rows, rng)}
    else:
        keep = {site.mask_input: np.empty((rows, *site.shape), np.bool_) for site in sites}
        for t in range(rows):
            for site in sites:
                keep[site.mask_input][t] = _keep(site, 1, rng)[0]
    masks = {}
    for site in sites:
        mask = keep[site.mask_input].astype(np.float32)  # then scaled in place: faster than a casting multiply
        mask /= np.float32(1.0 - site.ratio)  # what `(u < keep) / keep` gave, bit for bit
        masks[site.mask_input] = mask
    return masks
