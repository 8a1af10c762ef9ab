"""`Client`: the blocking SDK.

    >>> from ceal.client import Client
    >>> with Client("127.0.0.1:50051") as client:          # doctest: +SKIP
    ...     p = client.predict(image)                        # image: numpy (H, W[, C]) or a file path
    ...     p.label_map.shape, p.score

Requests are built, replies read and every method's keyword arguments written in `ceal.client.calls`; the
methods are listed once, for both clients, in `ceal.client.methods`. This module only sends, blocking.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

import grpc

from ceal.client import calls
from ceal.client.methods import ClientBase

R = TypeVar("R")


class Client(ClientBase):
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

    @staticmethod
    def _open(target: str, credentials: grpc.ChannelCredentials | None, options: list[tuple[str, object]]) -> Any:
        if credentials is not None:
            return grpc.secure_channel(target, credentials, options=options)
        return grpc.insecure_channel(target, options=options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _unary(self, call: calls.Call[R]) -> R:
        with calls.translated():
            reply = self._start(call, self.timeout)
        return call.reply(reply)

    def _last(self, call: calls.Call[R], empty: Callable[[], R]) -> R:
        result = empty()
        for result in self._stream(call):  # noqa: B007 - the last reply is the result
            pass
        return result

    def _stream(self, call: calls.Call[R]) -> Generator[R, None, None]:
        bar = call.bar(call.progress)
        responses = None
        try:
            with calls.translated():
                responses = self._start(call, self.stream_timeout)
                for response in responses:
                    call.advance(response, bar)
                    yield call.reply(response)
        finally:
            bar.close()
            if responses is not None:
                responses.cancel()  # a no-op once the stream has finished; stops it if the caller broke off
