"""The access interceptor: bearer-token authentication, role checks, and the audit log.

UNAUTHENTICATED for a missing or unknown token, PERMISSION_DENIED for a role too low; health checks and
reflection stay open. Rejected calls never have their request decoded.

Audit log: logger `ceal.audit`, one JSON object per call, after it ends:

    {"time": "2025-01-31T09:12:03.120Z", "who": "annotator-7", "method": "ceal.v1.ActiveLearning/SubmitLabel",
     "code": "OK", "peer": "ipv4:10.0.0.7:51234", "image_ids": ["3fa9..."]}

`who` is the token's name from the tokens file ("anonymous" without a token, "unknown" for a token that
matched none). `image_ids` (opaque content hashes) are listed for leases handed out (GetQueryList) and labels
submitted (SubmitLabel). Nothing else from the request is logged: no DICOM UIDs, no annotator, no pixels.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import grpc

from ceal.service.middleware.auth import Role, TokenTable, bearer_token, required_role
from ceal.service.middleware.caller import Caller, Identified
from ceal.service.middleware.handlers import around_calls, final_code, method_parts, reject

__all__ = ["AUDIT_LOGGER", "AccessInterceptor", "audited_image_ids"]

AUDIT_LOGGER = "ceal.audit"
WHO_AM_I = "ceal.v1.ActiveLearning/WhoAmI"
audit_log = logging.getLogger(AUDIT_LOGGER)


def audited_image_ids(method: str, request: Any, response: Any) -> list[str]:
    """Image ids a call leased or labelled: GetQueryList's leased items, SubmitLabel's image."""
    if method == "ceal.v1.ActiveLearning/SubmitLabel" and hasattr(request, "image_id"):
        return [request.image_id] if request.image_id else []
    if method == "ceal.v1.ActiveLearning/GetQueryList" and response is not None:
        return [item.image_id for item in response.items]
    return []


class _Audited:
    """Writes one audit line when the call ends (for streams: when the stream ends)."""

    def __init__(self, method: str, who: str, clock: Callable[[], float]) -> None:
        self.method, self.who, self.clock = method, who, clock

    def _write(self, context: grpc.ServicerContext, request: Any, response: Any, error: BaseException | None) -> None:
        record = {
            "time": datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "who": self.who,
            "method": self.method,
            "code": final_code(context, error).name,
            "peer": context.peer(),
        }
        ids = audited_image_ids(self.method, request, response)
        if ids:
            record["image_ids"] = ids
        audit_log.info(json.dumps(record, separators=(",", ":")))

    def unary(self, call: Callable[[], Any], request: Any, context: grpc.ServicerContext) -> Any:
        response, error = None, None
        try:
            response = call()
            return response
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._write(context, request, response, error)

    def streaming(
        self, call: Callable[[], Iterator[Any]], request: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        error: BaseException | None = None
        try:
            yield from call()
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._write(context, request, None, error)


class AccessInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """`tokens` None: no authentication (everyone is "anonymous"); `audit`: write the audit log."""

    def __init__(
        self, tokens: TokenTable | None, *, audit: bool = True, clock: Callable[[], float] = time.time
    ) -> None:
        self.tokens = tokens
        self.audit = audit
        self.clock = clock

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        service, name = method_parts(details.method)
        method = f"{service}/{name}"
        needed = required_role(method)
        who = "anonymous"
        role: Role | None = None
        if self.tokens is not None and needed is not None:
            metadata = {m.key: m.value for m in details.invocation_metadata or () if isinstance(m.value, str)}
            token = bearer_token(metadata)
            found = self.tokens.identify(token)
            if found is None:
                who = "anonymous" if token is None else "unknown"
                message = (
                    "this server needs a bearer token: send metadata 'authorization: Bearer <token>'"
                    if token is None
                    else "the bearer token is not known here; ask the administrator for one"
                )
                handler = reject(handler, grpc.StatusCode.UNAUTHENTICATED, message)
            else:
                who, role = found
                if role < needed:
                    handler = reject(
                        handler,
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"{method} needs the {_name(needed)} role; token {who!r} has {_name(role)}",
                    )
        if method == WHO_AM_I:  # the one method that reports the verdict
            caller = Caller(who, role, True) if role is not None else Caller("anonymous", Role.ADMIN, False)
            handler = around_calls(handler, Identified(caller))
        if not self.audit or needed is None:  # health checks and reflection are not audited
            return handler
        return around_calls(handler, _Audited(method, who, self.clock))


def _name(role: Role) -> str:
    return role.name.lower()
