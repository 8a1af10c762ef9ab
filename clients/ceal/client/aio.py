"""`AsyncClient`: the asyncio SDK (grpc.aio), the same methods as `Client`, awaited.

    >>> from ceal.client import AsyncClient
    >>> async with AsyncClient("127.0.0.1:50051") as client:    # doctest: +SKIP
    ...     p = await client.predict(image)
    ...     async for p in client.predict_many(images):
    ...         print(p.request_id, p.score)

Same channel settings (TLS, token, retries on UNAVAILABLE, round_robin), same requests and the same exceptions
as `Client`: both build their calls, and take their methods' keyword arguments, from `ceal.client.calls`;
each method here is its builder made awaitable (`unary`, `last`) or an async generator (`stream`). Create it
inside the event loop that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

import grpc

from ceal.client import calls
from ceal.client.channel import resolve_settings
from ceal.client.results import ScoreProgress
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2_grpc as seg_grpc

P = ParamSpec("P")
R = TypeVar("R")


def unary(build: Callable[P, calls.Call[R]]) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]]:
    """The coroutine method for a unary call: its arguments are `build`'s, it returns the call's result."""

    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._unary(build(*args, **kwargs))

    return calls.method_of(method, build)


def stream(build: Callable[P, calls.Call[R]]) -> Callable[Concatenate[AsyncClient, P], AsyncGenerator[R, None]]:
    """The method for a server stream: an async generator of the call's results, one per reply."""

    def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[R, None]:
        return self._stream(build(*args, **kwargs))

    return calls.method_of(method, build)


def last(
    build: Callable[P, calls.Call[R]], empty: Callable[[], R]
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]]:
    """The coroutine method for a stream whose last reply is the result (`empty()` when none comes)."""

    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result = empty()
        async for result in self._stream(build(*args, **kwargs)):  # noqa: B007 - the last reply is the result
            pass
        return result

    return calls.method_of(method, build)


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

    async def _unary(self, call: calls.Call[R]) -> R:
        method = getattr(self._stubs[call.service], call.method)
        with calls.translated():
            reply = await method(call.request, timeout=call.timeout or self.timeout, metadata=self.settings.metadata())
        return call.reply(reply)

    async def _stream(self, call: calls.Call[R]) -> AsyncGenerator[R, None]:
        method = getattr(self._stubs[call.service], call.method)
        bar = call.bar(call.progress)
        responses = None
        try:
            with calls.translated():
                responses = method(
                    call.request, timeout=call.timeout or self.stream_timeout, metadata=self.settings.metadata()
                )
                async for response in responses:
                    call.advance(response, bar)
                    yield call.reply(response)
        finally:
            bar.close()
            if responses is not None:
                responses.cancel()  # a no-op once the stream has finished; stops it if the caller broke off

    # Segmentation
    predict = unary(calls.predict)
    predict_many = stream(calls.predict_many)  # `async for p in client.predict_many(images)`
    promote_model = unary(calls.promote_model)
    rollback_model = unary(calls.rollback_model)
    list_models = unary(calls.list_models)

    # Active learning
    register_images = unary(calls.register_images)
    score_pool = last(calls.score_pool, ScoreProgress)
    query_list = unary(calls.query_list)
    submit_label = unary(calls.submit_label)
    export_labels = stream(calls.export_labels)
    find_similar = unary(calls.find_similar)
    pool_stats = unary(calls.pool_stats)
    list_pools = unary(calls.list_pools)
    pool_image = unary(calls.pool_image)
    release_lease = unary(calls.release_lease)
    who_am_i = unary(calls.who_am_i)
