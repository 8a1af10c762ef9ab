"""`Client`: the blocking SDK.

    >>> from ceal.client import Client
    >>> with Client("127.0.0.1:50051") as client:          # doctest: +SKIP
    ...     p = client.predict(image)                        # image: numpy (H, W[, C]) or a file path
    ...     p.label_map.shape, p.score

Requests are built and replies read in `ceal.client.calls`, shared with `AsyncClient`; this module only sends.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np

from ceal.client import calls
from ceal.client.channel import resolve_settings
from ceal.client.codec import ImageLike
from ceal.client.results import Identity, LabelRecord, ModelInfo, PoolImageView, Prediction, QueryList
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2_grpc as seg_grpc

R = TypeVar("R")


class Client:
    """A connection to a ceal server. Close it, or use it as a context manager.

    Args:
        address: "host:port"; a DNS name is balanced round-robin over all its addresses. None: $CEAL_SERVER,
            else 127.0.0.1:50051. A malformed address (no port, say) raises ValueError.
        timeout: default deadline in seconds for each unary call; a method's `timeout=` overrides it.
        stream_timeout: default deadline in seconds for a whole stream (predict_many, score_pool,
            export_labels); None (the default) lets a stream run as long as it has work.
        tls, root_certificates, client_certificate, client_key: TLS and mutual TLS.
        token: bearer token for servers with authentication; None: read from `token_file` if given, else
            $CEAL_TOKEN.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = 60.0,
        stream_timeout: float | None = None,
        **settings: Any,
    ) -> None:
        self.settings = resolve_settings(address, **settings)
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        target, creds, options = calls.channel_parts(self.settings)
        self._channel = (
            grpc.secure_channel(target, creds, options=options)
            if creds
            else grpc.insecure_channel(target, options=options)
        )
        self._stubs = {
            "segmentation": seg_grpc.SegmentationStub(self._channel),
            "active_learning": al_grpc.ActiveLearningStub(self._channel),
        }

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _unary(self, call: calls.Call[R], timeout: float | None = None) -> R:
        method = getattr(self._stubs[call.service], call.method)
        with calls.translated():
            reply = method(call.request, timeout=timeout or self.timeout, metadata=self.settings.metadata())
        return call.reply(reply)

    def _stream(self, call: calls.Call[R], timeout: float | None, progress: bool = False) -> Generator[R, None, None]:
        method = getattr(self._stubs[call.service], call.method)
        bar = call.bar(progress)
        responses = None
        try:
            with calls.translated():
                responses = method(
                    call.request, timeout=timeout or self.stream_timeout, metadata=self.settings.metadata()
                )
                for response in responses:
                    call.advance(response, bar)
                    yield call.reply(response)
        finally:
            bar.close()
            if responses is not None:
                responses.cancel()  # a no-op once the stream has finished; stops it if the caller broke off

    # Segmentation

    def predict(self, image: ImageLike, *, timeout: float | None = None, **options: Any) -> Prediction:
        """Segment one image. Options: model, version, samples (T), maps, threshold, seed, adaptive_tolerance,
        adaptive_min_samples, return_samples, keep_largest_component, fill_holes (see `requests.predict_request`)."""
        return self._unary(calls.predict(image, **options), timeout)

    def predict_many(
        self, images: Sequence[ImageLike], *, progress: bool = False, timeout: float | None = None, **options: Any
    ) -> Generator[Prediction, None, None]:
        """Segment many images over one stream, in order; `progress` shows a bar on stderr."""
        return self._stream(calls.predict_many(images, **options), timeout, progress)

    def promote_model(self, version: int, *, name: str = "", reason: str = "") -> tuple[int, int]:
        """Admin: serve `version` now (overrides the gate); returns (served, previously served)."""
        return self._unary(calls.promote_model(name, version, reason))

    def rollback_model(self, version: int = 0, *, name: str = "", reason: str = "") -> tuple[int, int]:
        """Admin: withdraw the served version, serve `version` (0: the newest earlier promoted one)."""
        return self._unary(calls.rollback_model(name, version, reason))

    def list_models(self, name: str = "") -> list[ModelInfo]:
        return self._unary(calls.list_models(name))

    # Active learning

    def register_images(
        self, images: Sequence[al_pb.PoolImage | ImageLike], *, pool: str = ""
    ) -> list[tuple[str, bool]]:
        """Add images to a pool (idempotent). Returns (image_id, created) per image."""
        return self._unary(calls.register_images(images, pool=pool))

    def score_pool(
        self,
        *,
        pool: str = "",
        model: str = "",
        samples: int = 0,
        force: bool = False,
        adaptive_tolerance: float = 0.0,
        adaptive_min_samples: int = 0,
        progress: bool = False,
        timeout: float | None = None,
    ) -> al_pb.ScorePoolProgress:
        """Score what is missing or stale; returns the final progress message.

        samples: T per image (0 = the server's default). adaptive_tolerance > 0 makes `samples` the maximum
        and stops an image once the standard error of its mean mutual information is at most this, in nats
        (e.g. 0.001); adaptive_min_samples: no stopping before this many (0 = the server's 8; else 4..samples).
        """
        last = al_pb.ScorePoolProgress()
        call = calls.score_pool(
            pool=pool,
            model=model,
            samples=samples,
            force=force,
            adaptive_tolerance=adaptive_tolerance,
            adaptive_min_samples=adaptive_min_samples,
        )
        for msg in self._stream(call, timeout, progress):
            last = msg
        return last

    def query_list(
        self,
        *,
        strategy: str = "ceal",
        k: int = 10,
        pool: str = "",
        model: str = "",
        annotator: str = "",
        budget_seconds: float = 0.0,
        lease_seconds: int = 0,
        series: bool = False,
        study: bool = False,
        round: int = 0,
        seed: int = 0,
        max_pseudo_labels: int = 0,
    ) -> QueryList:
        """The items to label next, leased to `annotator`. series=True (or study=True): whole series (studies),
        most uncertain first, every slice leased together and listed in `slice_image_ids`."""
        return self._unary(
            calls.query_list(
                strategy=strategy,
                k=k,
                pool=pool,
                model=model,
                annotator=annotator,
                budget_seconds=budget_seconds,
                lease_seconds=lease_seconds,
                series=series,
                study=study,
                round=round,
                seed=seed,
                max_pseudo_labels=max_pseudo_labels,
            )
        )

    def submit_label(
        self,
        image_id: str,
        mask: np.ndarray,
        *,
        annotator: str,
        pool: str = "",
        source: str = "human",
        seconds_spent: float = 0.0,
        idempotency_key: str | None = None,
        model_version: int = 0,
    ) -> tuple[str, int]:
        """Store a label; returns (label_id, version). Durable once this returns.

        model_version: for pseudo-labels, the model version that drew the mask (0: the one served on arrival)."""
        return self._unary(
            calls.submit_label(
                image_id,
                mask,
                annotator=annotator,
                pool=pool,
                source=source,
                seconds_spent=seconds_spent,
                idempotency_key=idempotency_key,
                model_version=model_version,
            )
        )

    def export_labels(
        self,
        *,
        pool: str = "",
        sources: Sequence[str] = ("human",),
        include_images: bool = True,
        timeout: float | None = None,
    ) -> Generator[LabelRecord, None, None]:
        return self._stream(calls.export_labels(pool=pool, sources=sources, include_images=include_images), timeout)

    def find_similar(
        self, query: str | ImageLike, *, k: int = 10, pool: str = "", model: str = ""
    ) -> list[tuple[str, float, int]]:
        """(image_id, cosine similarity, 0) of the k most similar pool images (the third value, once a Hamming
        distance, is always 0: retrieval is exact)."""
        return self._unary(calls.find_similar(query, k=k, pool=pool, model=model))

    def pool_stats(self, *, pool: str = "", model: str = "") -> al_pb.PoolStats:
        return self._unary(calls.pool_stats(pool=pool, model=model))

    def list_pools(self) -> list[str]:
        """Names of the pools that hold at least one image, sorted."""
        return self._unary(calls.list_pools())

    def pool_image(self, image_id: str, *, pool: str = "") -> PoolImageView:
        """A pool image's pixels as registered, its newest label and its lease."""
        return self._unary(calls.pool_image_view(image_id, pool=pool))

    def release_lease(self, image_id: str, *, annotator: str, pool: str = "") -> bool:
        """Give back `annotator`'s lease on the image (skip it); False when they held none."""
        return self._unary(calls.release_lease(image_id, annotator=annotator, pool=pool))

    def who_am_i(self) -> Identity:
        """The token's name and role as the server sees them (authentication False: no tokens checked)."""
        return self._unary(calls.who_am_i())
