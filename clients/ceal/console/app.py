"""The console's ASGI app: routes decode the request, call the SDK, and answer JSON (or the page itself).

Thin like a servicer: no labelling logic lives here. Errors become `{"error": "..."}` with an HTTP status
(the service's INVALID_ARGUMENT → 400, PERMISSION_DENIED → 403, ...) and the page shows the message; a
failure inside the console is logged here and answered with a plain sentence, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ceal.client import AsyncClient, CealError, Unauthenticated
from ceal.client.requests import STRATEGIES
from ceal.client.results import ModelInfo
from ceal.console import payloads
from ceal.console.sessions import COOKIE, CSRF_HEADER, Session, Sessions

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_STATUS = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_K = 50


class ConsoleError(Exception):
    """A request the console refuses itself; `status` is the HTTP status, the message is shown on the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"cache-control": "no-store"})


def _from_ceal(exc: CealError, server: str) -> JSONResponse:
    """The service's message, without the trailing "[CODE]", under the matching HTTP status."""
    name = getattr(exc.code, "name", "UNKNOWN")
    message = str(exc).removesuffix(f" [{name}]")
    if name == "UNAVAILABLE":
        return _error(503, f"The ceal service at {server} is unavailable (is `ceal serve` running?): {message}")
    return _error(_STATUS.get(name, 502), f"The ceal service says: {message}")


class _Headers(BaseHTTPMiddleware):
    """Security headers on every answer; no caching of API answers (they carry patient pixels)."""

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["content-security-policy"] = _CSP
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "no-referrer"
        response.headers["x-frame-options"] = "DENY"
        if request.url.path.startswith("/api/"):
            response.headers["cache-control"] = "no-store"
        return response


class Console:
    """The routes, bound to one ceal server address and the SDK's channel settings (TLS...)."""

    def __init__(self, server: str, *, secure_cookie: bool = False, **client_settings: Any) -> None:
        self.server = server
        self.secure_cookie = secure_cookie
        self.client_settings = client_settings
        self.sessions = Sessions()

    # ── plumbing ──────────────────────────────────────────────────────────────────────────────────

    def session(self, request: Request) -> Session:
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise ConsoleError(401, "Sign in first: paste your token on the sign-in page.")
        return session

    def checked(self, request: Request) -> Session:
        """The session of a state-changing request: same origin, JSON, and the session's CSRF token."""
        self.same_origin(request)
        session = self.session(request)
        if not session.csrf_ok(request.headers.get(CSRF_HEADER)):
            raise ConsoleError(403, "This form is stale (CSRF check failed): reload the page and try again.")
        return session

    @staticmethod
    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise ConsoleError(403, "Requests from other sites are refused.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise ConsoleError(415, "Send JSON (content-type: application/json).")

    @staticmethod
    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError as exc:
            raise ConsoleError(400, "The request body is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise ConsoleError(400, "The request body must be a JSON object.")
        return data

    @staticmethod
    async def models(session: Session) -> list[ModelInfo]:
        """The server's models, read once per session (class names and counts for the editor)."""
        if session.models is None:
            session.models = await session.client.list_models()
        return session.models

    # ── sign-in ───────────────────────────────────────────────────────────────────────────────────

    async def login(self, request: Request) -> Response:
        self.same_origin(request)
        data = await self.body(request)
        token = str(data.get("token", "")).strip()
        client = AsyncClient(self.server, token=token or None, **self.client_settings)
        try:
            who = await client.who_am_i()
        except CealError:
            await client.close()
            raise
        name = str(data.get("annotator", "")).strip()[:64]
        if who.authentication:
            annotator = who.name
        elif name:
            annotator = name
        else:
            await client.close()
            raise ConsoleError(400, "This server checks no tokens: type your name, so your labels carry it.")
        session = Session(who.name, who.role, who.authentication, annotator, client)
        await self.sessions.drop(request.cookies.get(COOKIE))
        await self.sessions.expire()
        sid = self.sessions.add(session)
        response = JSONResponse(session.public())
        response.set_cookie(
            COOKIE, sid, httponly=True, samesite="strict", secure=self.secure_cookie, path="/", max_age=12 * 3600
        )
        return response

    async def logout(self, request: Request) -> Response:
        self.checked(request)
        await self.sessions.drop(request.cookies.get(COOKIE))
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def config(self, request: Request) -> Response:
        """For the sign-in page: which server, and whether it checks tokens (asked without one)."""
        async with AsyncClient(self.server, timeout=10.0, **self.client_settings) as client:
            try:
                who = await client.who_am_i()
                authentication = who.authentication
            except Unauthenticated:
                authentication = True
        return JSONResponse({"server": self.server, "authentication": authentication})

    async def me(self, request: Request) -> Response:
        return JSONResponse({**self.session(request).public(), "server": self.server})

    # ── reading ───────────────────────────────────────────────────────────────────────────────────

    async def pools(self, request: Request) -> Response:
        session = self.session(request)
        return JSONResponse({"pools": await session.client.list_pools(), "strategies": list(STRATEGIES)})

    async def worklist(self, request: Request) -> Response:
        session = self.session(request)
        q = request.query_params
        strategy = q.get("strategy", "ceal")
        if strategy not in STRATEGIES:
            raise ConsoleError(400, f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
        try:
            k = min(MAX_K, max(1, int(q.get("k", "10"))))
        except ValueError as exc:
            raise ConsoleError(400, "k must be a whole number of images, 1 to 50.") from exc
        budget = 3600.0 if strategy == "cost_sensitive" else 0.0
        ql = await session.client.query_list(
            strategy=strategy, k=k, pool=q.get("pool", ""), annotator=session.annotator, budget_seconds=budget
        )
        return JSONResponse(payloads.worklist(ql))

    async def image(self, request: Request) -> Response:
        session = self.session(request)
        pool = request.query_params.get("pool", "")
        view = await session.client.pool_image(request.path_params["image_id"], pool=pool)
        prediction, models = await asyncio.gather(
            session.client.predict(view.image, maps=("label_map", "entropy"), seed=0), self.models(session)
        )
        model = next((m for m in models if m.name == prediction.model_name), None)
        return JSONResponse(payloads.image(view, prediction, model))

    async def dashboard(self, request: Request) -> Response:
        session = self.session(request)
        pool = request.query_params.get("pool", "")
        stats, models = await asyncio.gather(session.client.pool_stats(pool=pool), session.client.list_models())
        labels = [r async for r in session.client.export_labels(pool=pool, include_images=False)]
        return JSONResponse(payloads.dashboard(stats, models, labels, stats.pool))

    # ── writing ───────────────────────────────────────────────────────────────────────────────────

    async def label(self, request: Request) -> Response:
        session = self.checked(request)
        if not session.can_label:
            raise ConsoleError(403, f"Your token {session.name!r} has the {session.role} role: it cannot submit.")
        data = await self.body(request)
        try:
            height, width = int(data["height"]), int(data["width"])
            mask = payloads.mask_from_b64(str(data["mask"]), height, width)
            seconds = float(data.get("seconds", 0.0))
            key = str(data["idempotency_key"])
            image_id = str(data["image_id"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ConsoleError(400, f"The label is incomplete or malformed ({exc}); reload the image.") from exc
        label_id, version = await session.client.submit_label(
            image_id,
            mask,
            annotator=session.annotator,
            pool=str(data.get("pool", "")),
            seconds_spent=max(0.0, seconds),
            idempotency_key=key,
        )
        return JSONResponse({"label_id": label_id, "version": version})

    async def skip(self, request: Request) -> Response:
        session = self.checked(request)
        data = await self.body(request)
        released = await session.client.release_lease(
            str(data.get("image_id", "")), annotator=session.annotator, pool=str(data.get("pool", ""))
        )
        return JSONResponse({"released": released})

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.index),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/logout", self.logout, methods=["POST"]),
            Route("/api/config", self.config),
            Route("/api/me", self.me),
            Route("/api/pools", self.pools),
            Route("/api/worklist", self.worklist),
            Route("/api/image/{image_id}", self.image),
            Route("/api/dashboard", self.dashboard),
            Route("/api/label", self.label, methods=["POST"]),
            Route("/api/skip", self.skip, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]


async def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    return _error(exc.status, str(exc))


async def _ceal_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CealError)
    return _from_ceal(exc, request.app.state.console.server)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("console: %s %s failed", request.method, request.url.path)
    return _error(500, "The console hit an unexpected error (it is in the console's log). Try again.")


def create_app(server: str, *, secure_cookie: bool = False, **client_settings: Any) -> Starlette:
    """The console for the ceal server at `server` ("host:port"). client_settings: `AsyncClient`'s TLS options.

    secure_cookie: mark the session cookie Secure (serve the console over HTTPS, e.g. behind a proxy).
    """
    console = Console(server, secure_cookie=secure_cookie, **client_settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await console.sessions.close()

    app = Starlette(
        routes=console.routes(),
        middleware=[Middleware(_Headers)],
        exception_handlers={ConsoleError: _console_error, CealError: _ceal_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.console = console
    return app
