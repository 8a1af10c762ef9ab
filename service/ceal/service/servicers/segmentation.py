"""ceal.v1.Segmentation servicer: Predict, PredictStream, ListModels, PromoteModel, RollbackModel.

Decode → engine or registry → encode; the messages are made in `segmentation_messages`."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor

import grpc

from ceal.service.codec import decode_image
from ceal.service.engine.core import Engine
from ceal.service.errors import InvalidInput, NotFound, about
from ceal.service.middleware.spans import child_span
from ceal.service.registry import ModelRegistry
from ceal.service.servicers.context import cancel_with, deadline_of
from ceal.service.servicers.fields import check_fields
from ceal.service.servicers.segmentation_messages import (
    check_response_size,
    decode_options,
    encode_prediction,
    model_info,
)
from ceal.service.servicers.status import abort, unary
from ceal.v1 import segmentation_pb2 as pb
from ceal.v1 import segmentation_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class SegmentationServicer(pb_grpc.SegmentationServicer):
    def __init__(
        self,
        registry: ModelRegistry,
        engine: Engine,
        *,
        default_samples: int,
        max_pixels: int,
        max_message_bytes: int,
    ) -> None:
        self.registry = registry
        self.engine = engine
        self.default_samples = default_samples
        self.max_pixels = max_pixels
        self.max_message_bytes = max_message_bytes  # the server's send limit: responses are sized against it

    def _predict(
        self, request: pb.PredictRequest, deadline: float | None, context: grpc.ServicerContext
    ) -> pb.PredictResponse:
        check_fields(request)
        with about("options"):
            opts = decode_options(request.options, self.default_samples)
            self.engine.check_options(opts)
        model = self.registry.get(request.model_name, request.model_version)
        self.engine.batcher.check_admission(opts.samples, deadline)  # overload refused before the decode
        with child_span("decode"), about("image", "INVALID_IMAGE"):
            pixels = decode_image(request.image, max_pixels=self.max_pixels, dicom=model.meta.preprocessing)
        check_response_size(opts, model.meta, pixels.shape[0], pixels.shape[1], self.max_message_bytes)
        if not context.is_active():  # the caller left while the image was decoded: no engine work for it
            raise CancelledError("the call was cancelled before its image reached the engine")
        prediction = self.engine.predict(
            model, pixels, opts, deadline=deadline, on_queued=lambda future: cancel_with(context, future)
        )
        return encode_prediction(prediction, opts, request.request_id)

    @unary
    def Predict(self, request: pb.PredictRequest, context: grpc.ServicerContext) -> pb.PredictResponse:
        return self._predict(request, deadline_of(context), context)

    def PredictStream(
        self, request_iterator: Iterator[pb.PredictRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.PredictResponse]:
        """Pipelined: at most `window` requests in flight, so a slow reader throttles the writer.

        gRPC only pulls the next request when this generator asks for it, and it only asks once a
        response has been taken off its hands; memory stays bounded by the window.
        """
        window = max(2, self.engine.batcher.max_images)
        deadline = deadline_of(context)
        pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="ceal-stream")
        try:
            pending = []
            for request in request_iterator:
                # copy_context: the worker runs under this call's telemetry (child spans), if any
                run = contextvars.copy_context().run
                pending.append((request.request_id, pool.submit(run, self._predict, request, deadline, context)))
                if len(pending) >= window:
                    yield self._resolve(*pending.pop(0), context)
            for request_id, future in pending:
                yield self._resolve(request_id, future, context)
        finally:
            # The call ended (or was cancelled): requests not started never run; those in the engine stop at
            # their next chunk (their jobs were cancelled by the call's callbacks, `cancel_with`).
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _resolve(request_id: str, future: object, context: grpc.ServicerContext) -> pb.PredictResponse:
        try:
            return future.result()  # type: ignore[attr-defined, no-any-return]
        except Exception as exc:
            abort(context, exc, f"request {request_id!r}: ")

    @unary
    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        out = pb.ListModelsResponse()
        refused = self.registry.refused()
        skip = {(name, version) for name, version, _ in refused}
        for entry in self.registry.catalogue(request.name):
            if (entry.meta.name, entry.meta.version) not in skip:
                out.models.append(model_info(entry))
        for name, version, reason in refused:
            if not request.name or name == request.name:
                out.refused.add(name=name, version=version, reason=reason)
        if request.name and not out.models and not out.refused:
            raise NotFound(f"no model named {request.name!r} is on disk", reason="MODEL_NOT_FOUND")
        return out

    @unary
    def PromoteModel(self, request: pb.PromoteModelRequest, context: grpc.ServicerContext) -> pb.PromoteModelResponse:
        if request.version == 0:
            raise InvalidInput("set version to the version to serve (ListModels lists them with their status)")
        name = request.name or self.registry.default_name()
        served, previous = self.registry.promote(
            name, request.version, request.reason or "promoted by an admin", "admin"
        )
        log.info("model %s version %d promoted by an admin (was %d)", name, served, previous)
        return pb.PromoteModelResponse(name=name, served_version=served, previous_version=previous)

    @unary
    def RollbackModel(self, request: pb.PromoteModelRequest, context: grpc.ServicerContext) -> pb.PromoteModelResponse:
        name = request.name or self.registry.default_name()
        served, previous = self.registry.rollback(
            name, request.version, request.reason or "rolled back by an admin", "admin"
        )
        log.info("model %s rolled back from version %d to %d by an admin", name, previous, served)
        return pb.PromoteModelResponse(name=name, served_version=served, previous_version=previous)
