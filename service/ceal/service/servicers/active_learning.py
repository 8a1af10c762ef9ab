"""ceal.v1.ActiveLearning servicer: decode → pool core → encode."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np

from ceal.service.codec import decode_image
from ceal.service.engine.core import Engine
from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import InvalidInput, NotFound, Unavailable, about
from ceal.service.middleware.spans import child_span
from ceal.service.pool.masks import normalise_mask
from ceal.service.pool.queries import query_list
from ceal.service.pool.resolution import ResolutionGate
from ceal.service.pool.retrieval import similar_in_pool
from ceal.service.pool.scoring import PoolScorer, SamplingPlan, sampling_plan, scoring_rule
from ceal.service.registry import ModelRegistry
from ceal.service.servicers import pool_messages as msg
from ceal.service.servicers import pool_views
from ceal.service.servicers.context import deadline_of
from ceal.service.servicers.status import streaming, unary
from ceal.service.store import PoolStore, open_store
from ceal.v1 import active_learning_pb2 as pb
from ceal.v1 import active_learning_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)
MAX_IMAGES_PER_CALL = 1000


class ActiveLearningServicer(pb_grpc.ActiveLearningServicer):
    def __init__(
        self,
        store: PoolStore | None,
        registry: ModelRegistry,
        engine: Engine,
        *,
        default_samples: int,
        max_pixels: int,
        max_message_bytes: int,
        lease_seconds: float,
        rescore_on_new_version: bool = True,
        rescore_tolerance: float,
        rescore_min_samples: int,
        rescore_scale: float = 1.0,
    ) -> None:
        """rescore_tolerance / rescore_min_samples: background rescoring's adaptive T (0: fixed T); rescore_scale:
        pool scoring at this × the input size where the ranking holds (`pool/resolution.py`; 1: full size)."""
        self.store = store
        self.registry = registry
        self.engine = engine
        self.default_samples = default_samples
        # checked now (InvalidInput at start-up), not per pool later
        self.rescore_plan = SamplingPlan(
            default_samples, scoring_rule(default_samples, rescore_tolerance, rescore_min_samples)
        )
        self.max_pixels = max_pixels
        self.max_message_bytes = max_message_bytes  # the server's send limit: an export record must fit
        self.lease_seconds = lease_seconds  # how long a query list's leases last when the request does not say
        # checked at start-up like the plan above: the gate refuses a scale outside MIN_SCALE..1 (NaN too)
        gate = ResolutionGate(rescore_scale) if rescore_scale != 1.0 else None
        self.scorer = PoolScorer(store, engine, resolution=gate) if store is not None else None
        self._background: list[threading.Thread] = []
        self._background_lock = threading.Lock()
        if store is not None and rescore_on_new_version:
            registry.on_new_version(self._rescore_in_background)

    @classmethod
    def create(
        cls, state: str | None, registry: ModelRegistry, engine: Engine, **kwargs: Any
    ) -> ActiveLearningServicer:
        return cls(open_store(state) if state else None, registry, engine, **kwargs)

    def close(self, timeout: float = 30.0) -> None:
        """Stop background rescoring (it ends after the batch in hand), wait for it, then close the store.

        Call it before the engine's batcher closes: a rescoring thread may be waiting on a batch. A thread
        left running into interpreter shutdown inside onnxruntime or SQLite can crash the process."""
        if self.scorer is not None:
            self.scorer.stop()
        with self._background_lock:
            threads, self._background = self._background, []
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("background rescoring did not stop within %.0f s", timeout)
        if self.store is not None:
            self.store.close()

    def _rescore_in_background(self, model: LoadedModel) -> None:
        """A new latest version: its scores are missing (the old ones are stale); rescore every pool."""
        if self.scorer is None or not self.store or not self.store.pools():
            return
        thread = threading.Thread(
            target=self.scorer.rescore_all,
            args=(model, self.rescore_plan),
            name="ceal-rescore",
            daemon=True,
        )
        with self._background_lock:
            self._background = [t for t in self._background if t.is_alive()]
            self._background.append(thread)
        thread.start()

    def _store(self) -> tuple[PoolStore, PoolScorer]:
        if self.store is None or self.scorer is None:
            raise Unavailable("this server runs without a pool store; start it with --state DIR")
        return self.store, self.scorer

    @unary
    def RegisterImages(self, request: pb.RegisterImagesRequest, context: grpc.ServicerContext) -> Any:
        store, _ = self._store()
        with child_span("decode"):
            images = msg.new_images(request, max_pixels=self.max_pixels, max_images=MAX_IMAGES_PER_CALL)
        with child_span("store"):
            results = store.register_images(msg.pool_name(request.pool), images)
        return pb.RegisterImagesResponse(images=[pb.RegisteredImage(image_id=i, created=c) for i, c in results])

    @streaming
    def ScorePool(self, request: pb.ScorePoolRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        _, scorer = self._store()
        model = self.registry.get(request.model_name, request.model_version)
        plan = sampling_plan(
            self.engine.limits,
            request.samples or self.default_samples,
            adaptive_tolerance=request.adaptive_tolerance,
            adaptive_min_samples=request.adaptive_min_samples,
            deadline=deadline_of(context),
        )
        for p in scorer.score(msg.pool_name(request.pool), model, plan, force=request.force):
            if not context.is_active():
                return
            yield pb.ScorePoolProgress(
                done=p.done,
                total=p.total,
                fresh=p.fresh,
                images_per_second=p.images_per_second,
                eta_seconds=p.eta_seconds,
                finished=p.finished,
                model_name=model.meta.name,
                model_version=model.meta.version,
                mean_samples=p.mean_samples,
            )

    @unary
    def GetQueryList(self, request: pb.GetQueryListRequest, context: grpc.ServicerContext) -> Any:
        store, _ = self._store()
        model = self.registry.get(request.model_name)
        query = msg.query_request(request, self.lease_seconds)
        with child_span("store"):  # scores read, strategy run, leases written
            result = query_list(store, model.meta.name, model.meta.version, query)
        return pb.GetQueryListResponse(
            model_name=model.meta.name,
            model_version=model.meta.version,
            items=[msg.query_item(i) for i in result.items],
            pseudo_labels=[pb.PseudoLabelCandidate(image_id=i, confidence=c) for i, c in result.pseudo],
            unscored=result.unscored,
            note=result.note,
        )

    @unary
    def SubmitLabel(self, request: pb.SubmitLabelRequest, context: grpc.ServicerContext) -> Any:
        store, _ = self._store()
        source = msg.label_source(request.source)
        model_version = None
        if source == "pseudo":  # the version that drew the mask, when the client says; else the one served now
            model_version = int(request.model_version) or self.registry.get("").meta.version
        mask = self._checked_mask(msg.label_mask(request))
        with child_span("store"):
            label = store.submit_label(
                msg.pool_name(request.pool),
                request.image_id,
                mask,
                annotator=request.annotator,
                source=source,  # type: ignore[arg-type]
                seconds_spent=max(0.0, request.seconds_spent),
                idempotency_key=request.idempotency_key or None,
                model_version=model_version,
            )
        log.info("label stored: image %s version %d source %s", label.image_id, label.version, label.source)
        return pb.SubmitLabelResponse(label_id=label.label_id, version=label.version)

    def _checked_mask(self, mask: np.ndarray) -> np.ndarray:
        """The mask as class indices of the served model(s) (`normalise_mask`); unchecked beyond 0-255 when no
        model is loaded, or the loaded ones disagree on their classes and none is the default."""
        metas = {(m.meta.classes, m.meta.class_names) for m in self.registry.models()}
        if len(metas) > 1:
            try:
                meta = self.registry.get("").meta
            except (InvalidInput, NotFound, Unavailable):
                return mask
            metas = {(meta.classes, meta.class_names)}
        if not metas:
            return mask
        ((classes, names),) = metas
        return normalise_mask(mask, classes, names)

    @streaming
    def ExportLabels(self, request: pb.ExportLabelsRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        store, _ = self._store()
        pool = msg.pool_name(request.pool)
        sources = {msg.label_source(s) for s in request.sources} or {"human"}
        for label in store.latest_labels(pool, sources):
            if not context.is_active():
                return
            record = store.get_image(pool, label.image_id)
            omitted = msg.image_omitted(label, record, self.max_message_bytes) if request.include_images else ""
            pixels = store.load_pixels(pool, label.image_id) if request.include_images and not omitted else None
            out = msg.label_record(label, record, pixels)
            if omitted:
                log.warning("export of pool %s: image %s left out of its record: %s", pool, label.image_id, omitted)
                out.image_omitted = omitted
            yield out

    @unary
    def FindSimilar(self, request: pb.FindSimilarRequest, context: grpc.ServicerContext) -> Any:
        store, _ = self._store()
        pool = msg.pool_name(request.pool)
        model = self.registry.get(request.model_name)
        which = request.WhichOneof("query")
        query: str | np.ndarray | None = request.image_id if which == "image_id" else None
        if which == "image":
            with about("image", "INVALID_IMAGE"):
                query = decode_image(request.image, max_pixels=self.max_pixels, dicom=model.meta.preprocessing)
        found = similar_in_pool(store, self.engine, model, pool, query, request.k or 10, deadline_of(context))
        # hamming_distance stays 0: retrieval is exact (pool/retrieval.py); the field is kept for v1 clients
        return pb.FindSimilarResponse(images=[pb.SimilarImage(image_id=i, similarity=sim) for i, sim in found])

    @unary
    def GetPoolStats(self, request: pb.GetPoolStatsRequest, context: grpc.ServicerContext) -> Any:
        store, scorer = self._store()
        pool = msg.pool_name(request.pool)
        model = self.registry.get(request.model_name)
        c = store.counts(pool, model.meta.name, model.meta.version)
        stop = msg.stop_signal(model.meta.lineage.get("stop", {}))
        return pb.PoolStats(
            **stop,
            pool=pool,
            images=c.images,
            series=c.series,
            labelled_human=c.labelled_human,
            labelled_pseudo=c.labelled_pseudo,
            scored_fresh=c.scored_fresh,
            scored_stale=c.scored_stale,
            leased=c.leased,
            model_name=model.meta.name,
            model_version=model.meta.version,
            mean_samples=scorer.mean_samples(pool, model.meta.name, model.meta.version),
        )

    @unary
    def ListPools(self, request: pb.ListPoolsRequest, context: grpc.ServicerContext) -> Any:
        store, _ = self._store()
        return pb.ListPoolsResponse(pools=store.pools())

    @unary
    def GetPoolImage(self, request: pb.GetPoolImageRequest, context: grpc.ServicerContext) -> Any:
        store, _ = self._store()
        if not request.image_id:
            raise InvalidInput("set image_id: the id RegisterImages or GetQueryList gave")
        return pool_views.pool_image(store, msg.pool_name(request.pool), request.image_id)

    @unary
    def ReleaseLease(self, request: pb.ReleaseLeaseRequest, context: grpc.ServicerContext) -> Any:
        store, _ = self._store()
        if not request.image_id or not request.annotator:
            raise InvalidInput("set image_id and annotator (the one the query list was leased to)")
        released = pool_views.release_lease(store, msg.pool_name(request.pool), request.image_id, request.annotator)
        return pb.ReleaseLeaseResponse(released=released)

    @unary
    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext) -> Any:
        return pool_views.who_am_i()
