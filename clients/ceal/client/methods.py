"""The SDK's methods, listed once for `Client` and `AsyncClient` (`ClientBase`, with their shared settings).

Each method is a descriptor made from its builder in `ceal.client.calls` (`unary(calls.query_list)`): read from
a `Client` it is a blocking method, from an `AsyncClient` a coroutine method (a stream: a generator, an async
generator), and either way it takes the builder's arguments and has its name and docstring. So a signature is
written once, in `calls`, and a method listed here is on both clients; the clients only say how a call is sent
(`_unary`, `_stream`, `_last`). mypy and pyright read the overloads of `__get__`, so each client's methods are
typed as its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import grpc

from ceal.client import calls
from ceal.client.channel import resolve_settings
from ceal.client.results import ScoreProgress
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2_grpc as seg_grpc

if TYPE_CHECKING:
    from ceal.client.aio import AsyncClient
    from ceal.client.sync import Client

P = ParamSpec("P")
R = TypeVar("R")


class _Method(Generic[P, R]):
    """A client method made from `build`; `send` names the client's way of sending the call."""

    send = "_unary"
    extra: tuple[Any, ...] = ()  # further arguments of the sender

    def __init__(self, build: Callable[P, calls.Call[R]]) -> None:
        self.build = build
        functools.update_wrapper(self, build)  # its name and docstring, for help() and the docs
        signature = inspect.signature(build).replace(return_annotation=inspect.Signature.empty)
        self.signature = signature
        this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        self.__signature__ = signature.replace(parameters=[this, *signature.parameters.values()])

    def __call__(self, client: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Called through the class, `Client.query_list(client, ...)`, as a plain method would be."""
        return self.bind(client)(*args, **kwargs)

    def bind(self, client: Any) -> Callable[..., Any]:
        """The method of `client`: a coroutine function when the client's sender is one."""
        send, build, extra = getattr(client, self.send), self.build, self.extra

        async def awaited(*args: Any, **kwargs: Any) -> Any:
            return await send(build(*args, **kwargs), *extra)

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return send(build(*args, **kwargs), *extra)

        method: Callable[..., Any] = awaited if inspect.iscoroutinefunction(send) else blocking
        functools.update_wrapper(method, self.build)
        method.__signature__ = self.signature  # type: ignore[attr-defined]
        return method


class unary(_Method[P, R]):  # noqa: N801 - used like a decorator, as `property` is
    """A unary call: the result (awaited on an `AsyncClient`)."""

    @overload
    def __get__(self, client: None, owner: type) -> unary[P, R]: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, R]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        return self if client is None else self.bind(client)


class last(unary[P, R]):  # noqa: N801
    """A server stream whose last reply is the result (`empty()` if none comes); the others move the bar."""

    send = "_last"

    def __init__(self, build: Callable[P, calls.Call[R]], empty: Callable[[], R]) -> None:
        super().__init__(build)
        self.extra = (empty,)


class stream(_Method[P, R]):  # noqa: N801
    """A server stream: a generator of results, one per reply (an async generator on an `AsyncClient`)."""

    send = "_stream"

    @overload
    def __get__(self, client: None, owner: type) -> stream[P, R]: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, Generator[R, None, None]]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, AsyncGenerator[R, None]]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        return self if client is None else self.bind(client)


class ClientBase:
    """What `Client` and `AsyncClient` share: the connection settings, the stubs, and every method, each from
    its builder in `ceal.client.calls`. A client supplies `_open` (its channel) and the senders."""

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
        self._channel = self._open(*calls.channel_parts(self.settings))
        self._stubs = {
            "segmentation": seg_grpc.SegmentationStub(self._channel),
            "active_learning": al_grpc.ActiveLearningStub(self._channel),
        }

    @staticmethod
    def _open(target: str, credentials: grpc.ChannelCredentials | None, options: list[tuple[str, object]]) -> Any:
        """The channel (`grpc` or `grpc.aio`): credentials None means plain text."""
        raise NotImplementedError

    def _start(self, call: calls.Call[Any], default_timeout: float | None) -> Any:
        """Send `call` on its stub: the reply, the replies' iterator, or (grpc.aio) what to await for them.
        Its deadline is the call's own `timeout`, else `default_timeout`."""
        method = getattr(self._stubs[call.service], call.method)
        return method(call.request, timeout=call.timeout or default_timeout, metadata=self.settings.metadata())

    # Segmentation
    predict = unary(calls.predict)
    predict_many = stream(calls.predict_many)
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
