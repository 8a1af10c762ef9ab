"""Channel construction shared by the sync and asyncio clients: TLS, retries, balancing, limits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import grpc

SERVICES = ("ceal.v1.Segmentation", "ceal.v1.ActiveLearning")
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
            return path.read_bytes() if path is not None else None

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
        # A bare host:port resolves through DNS so round_robin sees every address behind the name.
        if "://" in self.address or self.address.startswith(("dns:", "ipv4:", "ipv6:", "unix:")):
            return self.address
        return f"dns:///{self.address}" if not self.address[0].isdigit() else self.address
