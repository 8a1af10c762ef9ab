"""`ceal serve`: run the gRPC server."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ceal.service.server import ServerConfig

OTEL_CHOICES = ("none", "console", "otlp", "prometheus")  # ceal.service.middleware.telemetry.EXPORTERS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gRPC inference and active-learning server")
    p.add_argument("--models", type=Path, required=True, help="models folder: <name>/<version>/model.onnx")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=50051, help="port (0 picks a free one)")
    p.add_argument("--state", help="pool store: a folder (SQLite) or a postgresql:// URL")
    p.add_argument(
        "--default-model",
        help="model used when a request names none; needed for that when more than one model is served",
    )
    p.add_argument("--samples", type=int, default=20, help="default Monte-Carlo samples T")
    p.add_argument("--max-samples", type=int, default=100, help="largest T a request may ask for")
    p.add_argument("--max-batch", type=int, default=8, help="dynamic batcher: images per engine run")
    p.add_argument("--max-queue", type=int, default=64, help="queued requests before RESOURCE_EXHAUSTED")
    p.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        help="calls in progress before RESOURCE_EXHAUSTED (default: from the machine's memory and the RPC "
        "worker threads; 0: no cap)",
    )
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="largest request or response message in bytes (default 64 MiB)",
    )
    p.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    p.add_argument(
        "--shutdown-delay",
        type=float,
        default=0.0,
        help="seconds to report NOT_SERVING before refusing new calls on SIGTERM (default 0)",
    )
    sec = p.add_argument_group("security")
    sec.add_argument("--tls-cert", type=Path, help="PEM server certificate (chain); with --tls-key turns TLS on")
    sec.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    sec.add_argument("--tls-client-ca", type=Path, help="PEM CA of client certificates: requires mutual TLS")
    sec.add_argument("--tokens", type=Path, help="JSON/YAML file: name → {token_sha256 or token, role}")
    sec.add_argument("--audit-log", type=Path, help="append the audit log (JSON lines) here; implies auditing")
    sec.add_argument("--reflection", action="store_true", help="enable gRPC server reflection (off by default)")
    obs = p.add_argument_group("telemetry")
    obs.add_argument("--otel", choices=OTEL_CHOICES, default="none", help="OpenTelemetry exporter (default none)")
    obs.add_argument(
        "--otel-endpoint",
        default="",
        help="otlp: collector host:port (localhost:4317); prometheus: listen host:port (127.0.0.1:9464)",
    )
    p.set_defaults(func=_run)


def _audit_to(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit = logging.getLogger("ceal.audit")
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False


def _run(args: argparse.Namespace) -> int:
    from ceal.service.middleware.auth import AuthError
    from ceal.service.middleware.telemetry import TelemetryError
    from ceal.service.middleware.tls import TLSError
    from ceal.service.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.audit_log is not None:
        _audit_to(args.audit_log)
    try:
        return serve(server_config(args), args.port_file)
    except (AuthError, TLSError, TelemetryError) as exc:
        print(f"ceal serve: {exc}", file=sys.stderr)
        return 2


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The parsed flags as a ServerConfig (TLS files checked here)."""
    from ceal.service.middleware.tls import TLSConfig
    from ceal.service.server import ServerConfig

    return ServerConfig(
        models=args.models,
        address=f"{args.host}:{args.port}",
        state=args.state,
        default_model=args.default_model,
        default_samples=args.samples,
        max_samples=args.max_samples,
        max_batch_images=args.max_batch,
        max_queue=args.max_queue,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        max_message_bytes=args.max_message_bytes,
        reflection=args.reflection,
        tls=TLSConfig.from_paths(args.tls_cert, args.tls_key, args.tls_client_ca),
        tokens=args.tokens,
        audit=args.audit_log is not None,
        otel=args.otel,
        otel_endpoint=args.otel_endpoint,
        shutdown_delay=args.shutdown_delay,
    )
