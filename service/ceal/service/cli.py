"""`ceal serve`: run the gRPC server.

The common flags also read `CEAL_*` environment variables (a container's usual way to configure): the flag,
when given, wins over the variable, which wins over the default. `ceal serve --help` names each variable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ceal.service.server import ServerConfig

OTEL_CHOICES = ("none", "console", "otlp", "prometheus")  # ceal.service.middleware.telemetry.EXPORTERS


def _env(name: str, default: object = None) -> object:
    """Environment variable `name` if set (a string: argparse converts and checks it like a typed flag,
    so a bad value is the usual one-line usage error), else `default`."""
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gRPC inference and active-learning server")
    models = _env("CEAL_MODELS")
    p.add_argument(
        "--models",
        type=Path,
        required=models is None,
        default=models,
        help="models folder: <name>/<version>/model.onnx [CEAL_MODELS]",
    )
    p.add_argument(
        "--promotions",
        type=Path,
        help="folder of <name>/promotion.json (which version is served); default: inside --models. Give a "
        "writable folder here when --models is mounted read-only, so PromoteModel/RollbackModel can write",
    )
    p.add_argument(
        "--host", default=_env("CEAL_HOST", "127.0.0.1"), help="address to listen on (default 127.0.0.1) [CEAL_HOST]"
    )
    p.add_argument("--port", type=int, default=_env("CEAL_PORT", 50051), help="port (0 picks a free one) [CEAL_PORT]")
    p.add_argument(
        "--state",
        default=_env("CEAL_STATE"),
        help="pool store: a folder (SQLite) or a postgresql:// URL [CEAL_STATE]",
    )
    p.add_argument(
        "--default-model",
        default=_env("CEAL_DEFAULT_MODEL"),
        help="model used when a request names none; needed for that when more than one model is served "
        "[CEAL_DEFAULT_MODEL]",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=_env("CEAL_SAMPLES"),
        help="default Monte-Carlo samples T [CEAL_SAMPLES]",
    )
    p.add_argument(
        "--rescore-tolerance",
        type=float,
        default=_env("CEAL_RESCORE_TOLERANCE"),
        help="background rescoring after a new version: adaptive T, stopping each image once the standard error "
        "of its mean mutual information is at most this (nats); 0 = fixed T (--samples) [CEAL_RESCORE_TOLERANCE]",
    )
    p.add_argument(
        "--rescore-min-samples",
        type=int,
        default=_env("CEAL_RESCORE_MIN_SAMPLES"),
        help="background rescoring's floor of samples per image; 0 = the server's (8) [CEAL_RESCORE_MIN_SAMPLES]",
    )
    p.add_argument(
        "--rescore-scale",
        type=float,
        default=_env("CEAL_RESCORE_SCALE"),
        help="score pools at this fraction of the model's input size (e.g. 0.5, 0.67; sides rounded to multiples "
        "of 2^depth) for each model version whose calibration on 32 pool images ranks like full size "
        "(Spearman rho >= 0.95), else at full size; 1 = always full size [CEAL_RESCORE_SCALE]",
    )
    p.add_argument(
        "--max-samples",
        type=int,
        default=_env("CEAL_MAX_SAMPLES"),
        help="largest T a request may ask for [CEAL_MAX_SAMPLES]",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=_env("CEAL_MAX_BATCH"),
        help="dynamic batcher: images per engine run [CEAL_MAX_BATCH]",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=_env("CEAL_MAX_QUEUE"),
        help="queued requests before RESOURCE_EXHAUSTED [CEAL_MAX_QUEUE]",
    )
    p.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        default=_env("CEAL_MAX_CONCURRENT_RPCS"),
        help="calls in progress before RESOURCE_EXHAUSTED (default: from the machine's memory and the RPC "
        "worker threads; 0: no cap) [CEAL_MAX_CONCURRENT_RPCS]",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=_env("CEAL_THREADS"),
        help="onnxruntime intra-op threads per session (default: the cgroup CPU limit, else the usable CPUs) "
        "[CEAL_THREADS]",
    )
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=_env("CEAL_MAX_MESSAGE_BYTES"),
        help="largest request or response message in bytes (default 64 MiB) [CEAL_MAX_MESSAGE_BYTES]",
    )
    p.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    p.add_argument(
        "--shutdown-delay",
        type=float,
        default=0.0,
        help="seconds to report NOT_SERVING before refusing new calls on SIGTERM (default 0)",
    )
    net = p.add_argument_group("connections")
    net.add_argument(
        "--keepalive-time",
        type=float,
        default=_env("CEAL_KEEPALIVE_TIME"),
        help="seconds between the server's keepalive pings on an idle connection (default 60) [CEAL_KEEPALIVE_TIME]",
    )
    net.add_argument(
        "--keepalive-timeout",
        type=float,
        default=_env("CEAL_KEEPALIVE_TIMEOUT"),
        help="seconds to wait for a ping's ack before closing the connection (default 20) [CEAL_KEEPALIVE_TIMEOUT]",
    )
    net.add_argument(
        "--max-connection-age",
        type=float,
        default=_env("CEAL_MAX_CONNECTION_AGE"),
        help="seconds before a connection is asked to reconnect (GOAWAY), so clients spread over replicas the "
        "autoscaler adds (default 300, gRPC adds ±10%% jitter; 0 = never) [CEAL_MAX_CONNECTION_AGE]",
    )
    net.add_argument(
        "--max-connection-age-grace",
        type=float,
        default=_env("CEAL_MAX_CONNECTION_AGE_GRACE"),
        help="seconds calls in flight get to finish after that before the connection closes (default 300) "
        "[CEAL_MAX_CONNECTION_AGE_GRACE]",
    )
    sec = p.add_argument_group("security")
    sec.add_argument(
        "--tls-cert",
        type=Path,
        default=_env("CEAL_TLS_CERT"),
        help="PEM server certificate (chain); with --tls-key turns TLS on [CEAL_TLS_CERT]",
    )
    sec.add_argument(
        "--tls-key", type=Path, default=_env("CEAL_TLS_KEY"), help="PEM private key of --tls-cert [CEAL_TLS_KEY]"
    )
    sec.add_argument(
        "--tls-client-ca",
        type=Path,
        default=_env("CEAL_TLS_CLIENT_CA"),
        help="PEM CA of client certificates: requires mutual TLS [CEAL_TLS_CLIENT_CA]",
    )
    sec.add_argument(
        "--tokens",
        type=Path,
        default=_env("CEAL_TOKENS"),
        help="JSON/YAML file: name → {token_sha256 or token, role} [CEAL_TOKENS]",
    )
    sec.add_argument("--audit-log", type=Path, help="append the audit log (JSON lines) here; implies auditing")
    sec.add_argument("--reflection", action="store_true", help="enable gRPC server reflection (off by default)")
    obs = p.add_argument_group("telemetry")
    obs.add_argument(
        "--otel",
        choices=OTEL_CHOICES,
        default=_env("CEAL_OTEL", "none"),
        help="OpenTelemetry exporter (default none) [CEAL_OTEL]",
    )
    obs.add_argument(
        "--otel-endpoint",
        default=_env("CEAL_OTEL_ENDPOINT", ""),
        help="otlp: collector host:port (localhost:4317); prometheus: listen host:port (127.0.0.1:9464) "
        "[CEAL_OTEL_ENDPOINT]",
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
    from ceal.service.errors import InvalidInput
    from ceal.service.middleware.auth import AuthError
    from ceal.service.middleware.telemetry import TelemetryError
    from ceal.service.middleware.tls import TLSError
    from ceal.service.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.audit_log is not None:
        _audit_to(args.audit_log)
    try:
        return serve(server_config(args), args.port_file)
    except (AuthError, TLSError, TelemetryError, InvalidInput) as exc:  # InvalidInput: a bad rescore setting
        print(f"ceal serve: {exc}", file=sys.stderr)
        return 2


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The parsed flags as a ServerConfig (TLS files checked here)."""
    from ceal.service.middleware.tls import TLSConfig
    from ceal.service.server import ServerConfig

    # flags left unset (None) take ServerConfig's defaults, the one place they are written
    flags = {
        "default_samples": args.samples,
        "rescore_tolerance": args.rescore_tolerance,
        "rescore_min_samples": args.rescore_min_samples,
        "rescore_scale": args.rescore_scale,
        "max_samples": args.max_samples,
        "max_batch_images": args.max_batch,
        "max_queue": args.max_queue,
        "max_message_bytes": args.max_message_bytes,
        "keepalive_time": args.keepalive_time,
        "keepalive_timeout": args.keepalive_timeout,
        "max_connection_age": args.max_connection_age,
        "max_connection_age_grace": args.max_connection_age_grace,
    }
    return ServerConfig(
        models=args.models,
        address=f"{args.host}:{args.port}",
        state=args.state,
        default_model=args.default_model,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        reflection=args.reflection,
        tls=TLSConfig.from_paths(args.tls_cert, args.tls_key, args.tls_client_ca),
        tokens=args.tokens,
        audit=args.audit_log is not None,
        otel=args.otel,
        otel_endpoint=args.otel_endpoint,
        shutdown_delay=args.shutdown_delay,
        threads=args.threads,
        promotions=args.promotions,
        **{name: value for name, value in flags.items() if value is not None},
    )
