"""inference.GRPCInferenceService (the Open Inference Protocol, KServe v2) on ceal's engine.

Thin, like the ceal.v1 servicers: decode (oip_codec) → the same engine, batcher and limits as Predict →
encode. Errors go through the same status map (rich details included); auth and telemetry come from the
server's interceptors. What each tensor and parameter means is in docs/open-inference.md.
"""

from __future__ import annotations

import threading
from importlib import metadata as package_metadata

import grpc
import numpy as np

from ceal.oip import grpc_predict_v2_pb2 as pb
from ceal.oip import grpc_predict_v2_pb2_grpc as pb_grpc
from ceal.service.engine.core import MAPS, Engine, Prediction, PredictOptions
from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import InvalidInput, about
from ceal.service.middleware.spans import child_span
from ceal.service.oip_codec import decode_image_input, decode_parameters, output_tensor
from ceal.service.registry import ModelRegistry
from ceal.service.servicers.context import cancel_with, deadline_of
from ceal.service.servicers.status import unary

__all__ = ["OUTPUTS", "PLATFORM", "InferenceServicer"]

# Output names in the order they are returned when the request names none.
OUTPUTS = ("probability", "label_map", "entropy", "mutual_information", "variance", "score")
PLATFORM = "onnxruntime_onnx"


def _version(text: str) -> int:
    """An Open Inference version string → ceal's version number; "" is 0 (the latest)."""
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(f"model version {text!r} is not a whole number; send e.g. '1', or '' for the latest")
    return int(text)


def _server_version() -> str:
    try:
        return package_metadata.version("ceal")
    except package_metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """`ready` is set by the server once the models are loaded and cleared when shutdown starts."""

    def __init__(self, registry: ModelRegistry, engine: Engine, *, default_samples: int, max_pixels: int) -> None:
        self.registry = registry
        self.engine = engine
        self.default_samples = default_samples
        self.max_pixels = max_pixels
        self.ready = threading.Event()

    def _loaded(self, name: str, version: str) -> LoadedModel | None:
        number = _version(version)
        versions = [m for m in self.registry.models() if m.meta.name == name]
        if not versions:
            return None
        if number == 0:
            return max(versions, key=lambda m: m.meta.version)
        return next((m for m in versions if m.meta.version == number), None)

    @unary
    def ServerLive(self, request: pb.ServerLiveRequest, context: grpc.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @unary
    def ServerReady(self, request: pb.ServerReadyRequest, context: grpc.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.ready.is_set() and bool(self.registry.models()))

    @unary
    def ModelReady(self, request: pb.ModelReadyRequest, context: grpc.ServicerContext) -> pb.ModelReadyResponse:
        with about("version"):
            model = self._loaded(request.name, request.version)
        return pb.ModelReadyResponse(ready=self.ready.is_set() and model is not None)

    @unary
    def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="ceal", version=_server_version(), extensions=[])

    @unary
    def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ModelMetadataResponse:
        with about("version"):
            model = self.registry.get(request.name, _version(request.version))
        m = model.meta
        tensor = pb.ModelMetadataResponse.TensorMetadata
        probability_shape = [-1, -1] if m.num_classes == 1 else [m.num_classes, -1, -1]
        return pb.ModelMetadataResponse(
            name=m.name,
            versions=[str(v.meta.version) for v in self.registry.models() if v.meta.name == m.name],
            platform=PLATFORM,
            inputs=[tensor(name="image", datatype="FP32", shape=[-1, -1, m.input_channels])],
            outputs=[
                tensor(name="probability", datatype="FP32", shape=probability_shape),
                tensor(name="label_map", datatype="UINT8", shape=[-1, -1]),
                *(tensor(name=n, datatype="FP32", shape=[-1, -1]) for n in OUTPUTS[2:5]),
                tensor(name="score", datatype="FP64", shape=[1]),
            ],
        )

    @unary
    def ModelInfer(self, request: pb.ModelInferRequest, context: grpc.ServicerContext) -> pb.ModelInferResponse:
        wanted = [o.name for o in request.outputs] or list(OUTPUTS)
        unknown = [n for n in wanted if n not in OUTPUTS]
        if unknown:
            raise InvalidInput(f"unknown outputs {unknown}; ceal returns {list(OUTPUTS)}", field="outputs")
        with about("parameters"):
            params = decode_parameters(request.parameters)
            opts = PredictOptions(
                samples=params.samples or self.default_samples,
                maps=tuple(n for n in MAPS if n in wanted),
                seed=params.seed,
                adaptive_tolerance=params.adaptive_tolerance,
                threshold=0.5 if params.threshold is None else params.threshold,
            )
            self.engine.check_options(opts)
        with about("model_version"):
            version = _version(request.model_version)
        model = self.registry.get(request.model_name, version)
        with child_span("decode"), about("inputs[0]", "INVALID_IMAGE"):
            pixels = decode_image_input(request, max_pixels=self.max_pixels)
        prediction = self.engine.predict(
            model, pixels, opts, deadline=deadline_of(context), on_queued=lambda future: cancel_with(context, future)
        )
        return encode_response(request, prediction, wanted)


def encode_response(request: pb.ModelInferRequest, p: Prediction, wanted: list[str]) -> pb.ModelInferResponse:
    """The outputs in `wanted` order; raw bytes when the request sent raw bytes (tritonclient does)."""
    arrays = {
        "probability": p.probability.astype(np.float32),
        "label_map": p.label_map,
        **{name: array.astype(np.float32) for name, array in p.maps.items()},
        "score": np.array([p.score], dtype=np.float64),
    }
    raw = bool(request.raw_input_contents)
    out = pb.ModelInferResponse(model_name=p.model_name, model_version=str(p.model_version), id=request.id)
    out.parameters["samples"].int64_param = p.samples
    for name in wanted:
        tensor, data = output_tensor(name, arrays[name], raw=raw)
        out.outputs.append(tensor)
        if data is not None:
            out.raw_output_contents.append(data)
    return out
