"""Bearer tokens with roles: the tokens file, the role each method needs, constant-time lookup.

Roles are ordered, each including the ones before it:

    viewer     Predict, PredictStream, ListModels, WhoAmI; the Open Inference Protocol's ModelInfer,
               ModelReady, ServerMetadata, ModelMetadata
    annotator  + GetQueryList, SubmitLabel, FindSimilar, GetPoolStats, ExportLabels, ListPools, GetPoolImage,
                 ReleaseLease
    admin      + RegisterImages, ScorePool, PromoteModel, RollbackModel (and any ceal method added later,
               until it is given a role)

Health checks, reflection and the Open Inference liveness/readiness probes (ServerLive, ServerReady) need no
token. The tokens file (JSON, or YAML when PyYAML is installed) maps
a name (who the audit log says called) to the token's SHA-256 in hex, or the token itself, and a role:

    {"pacs-bridge": {"token_sha256": "9f86d0...", "role": "admin"},
     "viewer-app":  {"token": "s3cret", "role": "viewer"}}

Only digests are kept in memory; a presented token is hashed and compared with every digest by
`hmac.compare_digest`, all of them every time, so the time taken says nothing about which one matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

__all__ = [
    "METHOD_ROLES",
    "OPEN_METHODS",
    "OPEN_SERVICES",
    "AuthError",
    "Role",
    "TokenTable",
    "bearer_token",
    "required_role",
]


class Role(IntEnum):
    VIEWER = 1
    ANNOTATOR = 2
    ADMIN = 3


METHOD_ROLES: dict[str, Role] = {
    "ceal.v1.Segmentation/Predict": Role.VIEWER,
    "ceal.v1.Segmentation/PredictStream": Role.VIEWER,
    "ceal.v1.Segmentation/ListModels": Role.VIEWER,
    "ceal.v1.ActiveLearning/WhoAmI": Role.VIEWER,
    "ceal.v1.ActiveLearning/GetQueryList": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/SubmitLabel": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/FindSimilar": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/GetPoolStats": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/ExportLabels": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/ListPools": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/GetPoolImage": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/ReleaseLease": Role.ANNOTATOR,
    "ceal.v1.ActiveLearning/RegisterImages": Role.ADMIN,
    "ceal.v1.ActiveLearning/ScorePool": Role.ADMIN,
    "ceal.v1.Segmentation/PromoteModel": Role.ADMIN,
    "ceal.v1.Segmentation/RollbackModel": Role.ADMIN,
    "inference.GRPCInferenceService/ModelInfer": Role.VIEWER,
    "inference.GRPCInferenceService/ModelReady": Role.VIEWER,
    "inference.GRPCInferenceService/ServerMetadata": Role.VIEWER,
    "inference.GRPCInferenceService/ModelMetadata": Role.VIEWER,
}
OPEN_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)
# Probes that load balancers and Triton-style health checks send without credentials.
OPEN_METHODS = frozenset({"inference.GRPCInferenceService/ServerLive", "inference.GRPCInferenceService/ServerReady"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuthError(ValueError):
    """The tokens file is wrong; the message says what to change (and never shows a token)."""


def required_role(method: str) -> Role | None:
    """The role `method` ('ceal.v1.Segmentation/Predict') needs; None when it is open to everyone."""
    service = method.rpartition("/")[0]
    if service in OPEN_SERVICES or method in OPEN_METHODS:
        return None
    return METHOD_ROLES.get(method, Role.ADMIN)  # fail closed: a new method is admin-only until given a role


def bearer_token(metadata: Mapping[str, str]) -> str | None:
    """The token of an `authorization: Bearer <token>` header, else None."""
    value = metadata.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class _Entry:
    name: str
    digest: bytes  # SHA-256 of the token
    role: Role


class TokenTable:
    """Who holds which token (as digests) and with which role."""

    def __init__(self, entries: Mapping[str, tuple[bytes, Role]]) -> None:
        if not entries:
            raise AuthError("the tokens file lists no tokens; add at least one name → {token_sha256, role}")
        self._entries = tuple(_Entry(name, digest, role) for name, (digest, role) in sorted(entries.items()))

    @classmethod
    def from_mapping(cls, raw: object) -> TokenTable:
        if not isinstance(raw, Mapping):
            raise AuthError("the tokens file must map names to {token_sha256 or token, role}")
        entries: dict[str, tuple[bytes, Role]] = {}
        for name, spec in raw.items():
            entries[str(name)] = _parse_entry(str(name), spec)
        return cls(entries)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthError(f"tokens file {path} cannot be read ({type(exc).__name__}); check the path") from exc
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError as exc:
                raise AuthError(f"{path} is YAML but PyYAML is not installed; pip install pyyaml or use JSON") from exc
            raw = yaml.safe_load(text)
        else:
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise AuthError(f"{path} is not valid JSON (line {exc.lineno}); fix it or use a .yaml file") from exc
        return cls.from_mapping(raw)

    def identify(self, token: str | None) -> tuple[str, Role] | None:
        """(name, role) of the holder of `token`, or None. Compares against every entry, always."""
        if token is None:
            return None
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found: _Entry | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return None if found is None else (found.name, found.role)

    def __len__(self) -> int:
        return len(self._entries)


def _parse_entry(name: str, spec: object) -> tuple[bytes, Role]:
    if not isinstance(spec, Mapping):
        raise AuthError(f"token {name!r}: expected {{token_sha256 or token, role}}")
    role_name = str(spec.get("role", "")).upper()
    if role_name not in Role.__members__:
        raise AuthError(f"token {name!r}: role must be one of {[r.name.lower() for r in Role]}")
    if "token_sha256" in spec:
        hexdigest = str(spec["token_sha256"]).strip().lower()
        if not _HEX64.match(hexdigest):
            raise AuthError(f"token {name!r}: token_sha256 must be 64 hex digits (sha256sum of the token)")
        digest = bytes.fromhex(hexdigest)
    elif "token" in spec and str(spec["token"]):
        digest = hashlib.sha256(str(spec["token"]).encode("utf-8")).digest()
    else:
        raise AuthError(f"token {name!r}: set token_sha256 (preferred) or token")
    return digest, Role[role_name]
