"""Channel construction shared by the sync and asyncio clients: TLS, retries, balancing, limits."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

SERVICES = ("ceal.v1.Segmentation", "ceal.v1.ActiveLearning")
DEFAULT_ADDRESS = "127.0.0.1:50051"
SERVER_ENV = "CEAL_SERVER"  # host:port used when no address is given
TOKEN_ENV = "CEAL_TOKEN"  # bearer token used when none is given
_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:", "xds:")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>[0-9]{1,5})$")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Retries on UNAVAILABLE happen inside gRPC (transparently, with backoff); round_robin spreads calls
# over every address a DNS name resolves to (a Kubernetes headless Service, say).
SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": s} for s in SERVICES],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def trace_context() -> tuple[tuple[str, str], ...]:
    """`traceparent` (and `tracestate`) of the current OpenTelemetry span, so the server's span joins the
    caller's trace. Empty when opentelemetry-api is not installed or no span is current."""
    if _propagate is None:
        return ()
    carrier: dict[str, str] = {}
    _propagate.inject(carrier)
    return tuple(carrier.items())


try:  # optional: the base client install has no OpenTelemetry
    from opentelemetry import propagate as _propagate
except ImportError:  # pragma: no cover - exercised only without opentelemetry-api
    _propagate = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ChannelSettings:
    """How to reach the server. `tls=True` uses the system roots unless `root_certificates` is given."""

    address: str
    tls: bool = False
    root_certificates: Path | None = None
    client_certificate: Path | None = None  # for mutual TLS
    client_key: Path | None = None
    token: str | None = None  # bearer token sent as `authorization` metadata

    def __post_init__(self) -> None:
        if self.token is not None and (not self.token.strip() or any(c in self.token for c in "\r\n")):
            raise ValueError("the token is empty or spans lines: pass the token itself (or --token-file FILE)")
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("mutual TLS needs both the client certificate and its key (--tls-cert and --tls-key)")

    def options(self) -> list[tuple[str, object]]:
        return [
            ("grpc.service_config", SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]

    def credentials(self) -> grpc.ChannelCredentials | None:
        if not (self.tls or self.root_certificates or self.client_certificate):
            return None

        def read(path: Path | None) -> bytes | None:
            if path is None:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read {path}: {exc.strerror}; pass a readable PEM file") from exc

        creds: grpc.ChannelCredentials = grpc.ssl_channel_credentials(
            root_certificates=read(self.root_certificates),
            private_key=read(self.client_key),
            certificate_chain=read(self.client_certificate),
        )
        return creds

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Per-call metadata: the bearer token, and the W3C trace context of the caller's current span."""
        auth = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        return auth + trace_context()

    def target(self) -> str:
        check_address(self.address)
        # A bare host:port resolves through DNS so round_robin sees every address behind the name.
        if "://" in self.address or self.address.startswith(("dns:", "ipv4:", "ipv6:", "unix:")):
            return self.address
        return f"dns:///{self.address}" if not (self.address[0].isdigit() or self.address[0] == "[") else self.address


def check_address(address: str) -> str:
    """`address` if it is a gRPC target this SDK can dial: host:port (port 1-65535, IPv6 in brackets) or a
    scheme target (dns:///name:port, unix:/path, ...). Raises ValueError saying what to write otherwise; a
    missing port is refused rather than left to default to 443."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"server address is empty: give host:port, e.g. {DEFAULT_ADDRESS}")
    if "://" in address or address.startswith(_SCHEMES):
        return address
    match = _HOST_PORT.match(address)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(
            f"server address {address!r} is not host:port with a port 1-65535: write e.g. {DEFAULT_ADDRESS} "
            "or [::1]:50051"
        )
    return address


def resolve_settings(
    address: str | None = None, *, token: str | None = None, token_file: Path | str | None = None, **settings: Any
) -> ChannelSettings:
    """ChannelSettings with the environment's defaults: the address from `CEAL_SERVER` (else 127.0.0.1:50051)
    when none is given, the token from `token_file` or else `CEAL_TOKEN` when none is given."""
    if token is None and token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the token file {token_file}: {exc.strerror}") from exc
    if token is None:
        token = os.environ.get(TOKEN_ENV, "").strip() or None
    chosen = check_address(address or os.environ.get(SERVER_ENV, "").strip() or DEFAULT_ADDRESS)
    return ChannelSettings(chosen, token=token, **settings)
