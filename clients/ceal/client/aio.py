"""`AsyncClient`: the asyncio SDK (grpc.aio), the same methods as `Client`, awaited.

    >>> from ceal.client import AsyncClient
    >>> async with AsyncClient("127.0.0.1:50051") as client:    # doctest: +SKIP
    ...     p = await client.predict(image)
    ...     async for p in client.predict_many(images):
    ...         print(p.request_id, p.score)

Same channel settings (TLS, token, retries on UNAVAILABLE, round_robin), same requests and the same exceptions
as `Client`: both build their calls in `ceal.client.calls` and take their methods, listed once, from
`ceal.client.methods`; this module only sends, awaiting. Create it inside the event loop that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

import grpc

from ceal.client import calls
from ceal.client.methods import ClientBase

R = TypeVar("R")


class AsyncClient(ClientBase):
    """An asyncio connection to a ceal server; `async with` it, or `await client.close()`.

    Arguments as for `Client`: address, timeout (unary default deadline, seconds), stream_timeout (whole
    streams; None = no deadline), tls, root_certificates, client_certificate, client_key, token.
    """

    @staticmethod
    def _open(target: str, credentials: grpc.ChannelCredentials | None, options: list[tuple[str, object]]) -> Any:
        if credentials is not None:
            return grpc.aio.secure_channel(target, credentials, options=options)
        return grpc.aio.insecure_channel(target, options=options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _unary(self, call: calls.Call[R]) -> R:
        with calls.translated():
            reply = await self._start(call, self.timeout)
        return call.reply(reply)

    async def _last(self, call: calls.Call[R], empty: Callable[[], R]) -> R:
        result = empty()
        async for result in self._stream(call):  # noqa: B007 - the last reply is the result
            pass
        return result

    async def _stream(self, call: calls.Call[R]) -> AsyncGenerator[R, None]:
        bar = call.bar(call.progress)
        responses = None
        try:
            with calls.translated():
                responses = self._start(call, self.stream_timeout)
                async for response in responses:
                    call.advance(response, bar)
                    yield call.reply(response)
        finally:
            bar.close()
            if responses is not None:
                responses.cancel()  # a no-op once the stream has finished; stops it if the caller broke off
