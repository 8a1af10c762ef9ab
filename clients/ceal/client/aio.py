"""`AsyncClient`: the asyncio SDK (grpc.aio), the same methods as `Client`, awaited.

    >>> from ceal.client import AsyncClient
    >>> async with AsyncClient("127.0.0.1:50051") as client:    # doctest: +SKIP
    ...     p = await client.predict(image)
    ...     async for p in client.predict_many(images):
    ...         print(p.request_id, p.score)

Same channel settings (TLS, token, retries on UNAVAILABLE, round_robin), same requests and the same exceptions
as `Client`: both build their calls in `ceal.client.calls`. Create it inside the event loop that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
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


class AsyncClient:
    """An asyncio connection to a ceal server; `async with` it, or `await client.close()`.

    Arguments as for `Client`: address, timeout (unary default deadline, seconds), stream_timeout (whole
    streams; None = no deadline), tls, root_certificates, client_certificate, client_key, token.
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
            grpc.aio.secure_channel(target, creds, options=options)
            if creds
            else grpc.aio.insecure_channel(target, options=options)
        )
        self._stubs = {
            "segmentation": seg_grpc.SegmentationStub(self._channel),
            "active_learning": al_grpc.ActiveLearningStub(self._channel),
        }

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _unary(self, call: calls.Call[R], timeout: float | None = None) -> R:
        method = getattr(self._stubs[call.service], call.method)
        with calls.translated():
            reply = await method(call.request, timeout=timeout or self.timeout, metadata=self.settings.metadata())
        return call.reply(reply)

    async def _stream(
        self, call: calls.Call[R], timeout: float | None, progress: bool = False
    ) -> AsyncGenerator[R, None]:
        method = getattr(self._stubs[call.service], call.method)
        bar = call.bar(progress)
        responses = None
        try:
            with calls.translated():
                responses = method(
                    call.request, timeout=timeout or self.stream_timeout, metadata=self.settings.metadata()
                )
                async for response in responses:
                    call.advance(response, bar)
                    yield call.reply(response)
        finally:
            bar.close()
            if responses is not None:
                responses.cancel()  # a no-op once the stream has finished; stops it if the caller broke off

    # Segmentation

    async def predict(self, image: ImageLike, *, timeout: float | None = None, **options: Any) -> Prediction:
        """Segment one image (options as for `Client.predict`)."""
        return await self._unary(calls.predict(image, **options), timeout)

    def predict_many(
        self, images: Sequence[ImageLike], *, progress: bool = False, timeout: float | None = None, **options: Any
    ) -> AsyncGenerator[Prediction, None]:
        """Segment many images over one stream, in order: `async for p in client.predict_many(images)`."""
        return self._stream(calls.predict_many(images, **options), timeout, progress)

    async def promote_model(self, version: int, *, name: str = "", reason: str = "") -> tuple[int, int]:
        """Admin: serve `version` now (overrides the gate); returns (served, previously served)."""
        return await self._unary(calls.promote_model(name, version, reason))

    async def rollback_model(self, version: int = 0, *, name: str = "", reason: str = "") -> tuple[int, int]:
        """Admin: withdraw the served version, serve `version` (0: the newest earlier promoted one)."""
        return await self._unary(calls.rollback_model(name, version, reason))

    async def list_models(self, name: str = "") -> list[ModelInfo]:
        return await self._unary(calls.list_models(name))

    # Active learning

    async def register_images(
        self, images: Sequence[al_pb.PoolImage | ImageLike], *, pool: str = ""
    ) -> list[tuple[str, bool]]:
        """Add images to a pool (idempotent). Returns (image_id, created) per image."""
        return await self._unary(calls.register_images(images, pool=pool))

    async def score_pool(
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
        async for msg in self._stream(call, timeout, progress):
            last = msg
        return last

    async def query_list(
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
        return await self._unary(
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

    async def submit_label(
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
        return await self._unary(
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
    ) -> AsyncGenerator[LabelRecord, None]:
        return self._stream(calls.export_labels(pool=pool, sources=sources, include_images=include_images), timeout)

    async def find_similar(
        self, query: str | ImageLike, *, k: int = 10, pool: str = "", model: str = ""
    ) -> list[tuple[str, float, int]]:
        return await self._unary(calls.find_similar(query, k=k, pool=pool, model=model))

    async def pool_stats(self, *, pool: str = "", model: str = "") -> al_pb.PoolStats:
        return await self._unary(calls.pool_stats(pool=pool, model=model))

    async def list_pools(self) -> list[str]:
        """Names of the pools that hold at least one image, sorted."""
        return await self._unary(calls.list_pools())

    async def pool_image(self, image_id: str, *, pool: str = "") -> PoolImageView:
        """A pool image's pixels as registered, its newest label and its lease."""
        return await self._unary(calls.pool_image_view(image_id, pool=pool))

    async def release_lease(self, image_id: str, *, annotator: str, pool: str = "") -> bool:
        """Give back `annotator`'s lease on the image (skip it); False when they held none."""
        return await self._unary(calls.release_lease(image_id, annotator=annotator, pool=pool))

    async def who_am_i(self) -> Identity:
        """The token's name and role as the server sees them (authentication False: no tokens checked)."""
        return await self._unary(calls.who_am_i())
