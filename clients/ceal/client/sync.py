"""`Client`: the blocking SDK.

    >>> from ceal.client import Client
    >>> with Client("127.0.0.1:50051") as client:          # doctest: +SKIP
    ...     p = client.predict(image)                        # image: numpy (H, W[, C]) or a file path
    ...     p.label_map.shape, p.score
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np
from tqdm import tqdm

from ceal.client import requests
from ceal.client.channel import ChannelSettings
from ceal.client.codec import ImageLike
from ceal.client.errors import from_rpc_error
from ceal.client.results import LabelRecord, ModelInfo, Prediction, QueryList
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc

T = TypeVar("T")


class Client:
    """A connection to a ceal server. Close it, or use it as a context manager.

    Args:
        address: "host:port"; a DNS name is balanced round-robin over all its addresses.
        timeout: default deadline in seconds for each unary call (streams: per stream).
        tls, root_certificates, client_certificate, client_key: TLS and mutual TLS.
        token: bearer token for servers with authentication.
    """

    def __init__(self, address: str, *, timeout: float = 60.0, **settings: Any) -> None:
        self.settings = ChannelSettings(address, **settings)
        self.timeout = timeout
        creds = self.settings.credentials()
        target, options = self.settings.target(), self.settings.options()
        self._channel = (
            grpc.secure_channel(target, creds, options=options) if creds else grpc.insecure_channel(target, options=options)
        )
        self._seg = seg_grpc.SegmentationStub(self._channel)
        self._al = al_grpc.ActiveLearningStub(self._channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self.settings.metadata())
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    def _stream(self, method: Callable[..., Iterable[T]], request: Any, timeout: float | None) -> Iterator[T]:
        try:
            yield from method(request, timeout=timeout, metadata=self.settings.metadata())
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    # Segmentation

    def predict(self, image: ImageLike, *, timeout: float | None = None, **options: Any) -> Prediction:
        """Segment one image. Options: model, version, samples (T), maps, threshold, seed, return_samples,
        keep_largest_component, fill_holes (see `requests.predict_request`)."""
        return Prediction.from_proto(self._call(self._seg.Predict, requests.predict_request(image, **options), timeout))

    def predict_many(
        self, images: Sequence[ImageLike], *, progress: bool = False, timeout: float | None = None, **options: Any
    ) -> Iterator[Prediction]:
        """Segment many images over one stream, in order; `progress` shows a bar on stderr."""
        reqs = (requests.predict_request(img, request_id=str(i), **options) for i, img in enumerate(images))
        bar = tqdm(total=len(images), desc="predict", unit="img", disable=not progress)
        try:
            for response in self._stream(self._seg.PredictStream, reqs, timeout):
                bar.update(1)
                yield Prediction.from_proto(response)
        finally:
            bar.close()

    def list_models(self, name: str = "") -> list[ModelInfo]:
        return [ModelInfo.from_proto(m) for m in self._call(self._seg.ListModels, seg_pb.ListModelsRequest(name=name)).models]

    # Active learning

    def register_images(self, images: Sequence[al_pb.PoolImage | ImageLike], *, pool: str = "") -> list[tuple[str, bool]]:
        """Add images to a pool (idempotent). Returns (image_id, created) per image."""
        items = [i if isinstance(i, al_pb.PoolImage) else requests.pool_image(i) for i in images]
        reply = self._call(self._al.RegisterImages, al_pb.RegisterImagesRequest(pool=pool, images=items))
        return [(r.image_id, r.created) for r in reply.images]

    def score_pool(
        self, *, pool: str = "", model: str = "", samples: int = 0, force: bool = False, progress: bool = False,
        timeout: float | None = None,
    ) -> al_pb.ScorePoolProgress:
        """Score what is missing or stale; returns the final progress message."""
        req = al_pb.ScorePoolRequest(pool=pool, model_name=model, samples=samples, force=force)
        last = al_pb.ScorePoolProgress()
        bar = tqdm(desc="score", unit="img", disable=not progress)
        try:
            for msg in self._stream(self._al.ScorePool, req, timeout):
                bar.total = msg.total
                bar.n = msg.done
                bar.refresh()
                last = msg
        finally:
            bar.close()
        return last

    def query_list(
        self, *, strategy: str = "ceal", k: int = 10, pool: str = "", model: str = "", annotator: str = "",
        budget_seconds: float = 0.0, lease_seconds: int = 0, series: bool = False, round: int = 0, seed: int = 0,
        max_pseudo_labels: int = 0,
    ) -> QueryList:
        req = requests.query_list_request(
            pool=pool, strategy=strategy, k=k, model=model, annotator=annotator, budget_seconds=budget_seconds,
            lease_seconds=lease_seconds, series=series, round_=round, seed=seed, max_pseudo_labels=max_pseudo_labels,
        )
        return QueryList.from_proto(self._call(self._al.GetQueryList, req))

    def submit_label(
        self, image_id: str, mask: np.ndarray, *, annotator: str, pool: str = "", source: str = "human",
        seconds_spent: float = 0.0, idempotency_key: str | None = None,
    ) -> tuple[str, int]:
        """Store a label; returns (label_id, version). Durable once this returns."""
        req = requests.submit_label_request(
            image_id, mask, pool=pool, annotator=annotator, source=source, seconds_spent=seconds_spent,
            idempotency_key=idempotency_key,
        )
        reply = self._call(self._al.SubmitLabel, req)
        return reply.label_id, reply.version

    def export_labels(
        self, *, pool: str = "", sources: Sequence[str] = ("human",), include_images: bool = True,
        timeout: float | None = None,
    ) -> Iterator[LabelRecord]:
        req = al_pb.ExportLabelsRequest(
            pool=pool, sources=[requests.SOURCES[s] for s in sources], include_images=include_images
        )
        for record in self._stream(self._al.ExportLabels, req, timeout):
            yield LabelRecord.from_proto(record)

    def find_similar(
        self, query: str | ImageLike, *, k: int = 10, pool: str = "", model: str = ""
    ) -> list[tuple[str, float, int]]:
        """(image_id, cosine similarity, Hamming distance) of the k most similar pool images."""
        req = al_pb.FindSimilarRequest(pool=pool, k=k, model_name=model)
        if isinstance(query, str):
            req.image_id = query
        else:
            req.image.CopyFrom(requests.to_image(query))
        reply = self._call(self._al.FindSimilar, req)
        return [(r.image_id, r.similarity, r.hamming_distance) for r in reply.images]

    def pool_stats(self, *, pool: str = "", model: str = "") -> al_pb.PoolStats:
        return self._call(self._al.GetPoolStats, al_pb.GetPoolStatsRequest(pool=pool, model_name=model))
