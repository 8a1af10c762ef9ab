"""Signed-in sessions, kept in the console's memory: the cookie carries only a random session id.

The bearer token never reaches the page's JavaScript: it stays here, in the session, and is forwarded on
every gRPC call by that session's `AsyncClient`. Each session has its own CSRF token, which every state
changing request must echo in the `X-CSRF-Token` header.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ceal.client import AsyncClient
from ceal.client.results import ModelInfo

COOKIE = "ceal_session"
CSRF_HEADER = "x-csrf-token"


@dataclass
class Session:
    """One signed-in user. `annotator` names their labels and leases (the token's name, or theirs)."""

    name: str
    role: str  # "viewer" | "annotator" | "admin"
    authentication: bool  # False: the server checks no tokens
    annotator: str
    client: AsyncClient
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = field(default_factory=time.monotonic)
    models: list[ModelInfo] | None = None

    @property
    def can_label(self) -> bool:
        return self.role in ("annotator", "admin")

    def public(self) -> dict[str, object]:
        """What the page may know: everything but the token."""
        return {
            "name": self.name,
            "role": self.role,
            "authentication": self.authentication,
            "annotator": self.annotator,
            "can_label": self.can_label,
            "csrf": self.csrf,
        }

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


class Sessions:
    """Session id → Session; idle sessions expire after `idle_seconds` (their channels are closed)."""

    def __init__(self, idle_seconds: float = 12 * 3600, clock: Callable[[], float] = time.monotonic) -> None:
        self._by_id: dict[str, Session] = {}
        self.idle_seconds = idle_seconds
        self.clock = clock

    def add(self, session: Session) -> str:
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = session
        return sid

    def get(self, sid: str | None) -> Session | None:
        session = self._by_id.get(sid or "")
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle_seconds:
            return None
        session.last_seen = now
        return session

    async def drop(self, sid: str | None) -> None:
        session = self._by_id.pop(sid or "", None)
        if session is not None:
            await session.client.close()

    async def expire(self) -> None:
        now = self.clock()
        for sid in [s for s, v in self._by_id.items() if now - v.last_seen > self.idle_seconds]:
            await self.drop(sid)

    async def close(self) -> None:
        for sid in list(self._by_id):
            await self.drop(sid)
