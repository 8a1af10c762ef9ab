"""Who is calling: the access interceptor's verdict, handed to the servicer through a context variable.

The interceptor identifies the bearer token; `WhoAmI` reports it. Without a tokens file there is no verdict
and `current_caller()` is `ANONYMOUS`: no authentication, every method open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from ceal.service.middleware.auth import Role

__all__ = ["ANONYMOUS", "Caller", "Identified", "current_caller"]


@dataclass(frozen=True)
class Caller:
    """The token's name and role; `authenticated` False when the server checks no tokens."""

    name: str
    role: Role
    authenticated: bool


ANONYMOUS = Caller("anonymous", Role.ADMIN, authenticated=False)
_CALLER: ContextVar[Caller] = ContextVar("ceal_caller", default=ANONYMOUS)


def current_caller() -> Caller:
    return _CALLER.get()


class Identified:
    """A call observer (`handlers.around_calls`) that makes `caller` current for the call's duration."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    def unary(self, call: Callable[[], Any], request: Any, context: grpc.ServicerContext) -> Any:
        token = _CALLER.set(self.caller)
        try:
            return call()
        finally:
            _CALLER.reset(token)

    def streaming(
        self, call: Callable[[], Iterator[Any]], request: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        token = _CALLER.set(self.caller)
        try:
            yield from call()
        finally:
            _CALLER.reset(token)
