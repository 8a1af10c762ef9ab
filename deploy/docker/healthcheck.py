"""Container health check: exit 0 when the ceal server's gRPC health service says SERVING, 1 otherwise.

Docker's HEALTHCHECK runs this inside the container. Kubernetes uses its native gRPC probes, which speak
plaintext only; a pod serving TLS (`ceal serve --tls-cert ...`) runs this as an exec probe instead, with
--tls-ca (and --tls-cert/--tls-key when the server requires client certificates).
Standalone on purpose (grpcio and grpcio-health-checking only, no ceal import) so it stays cheap to start.

    python healthcheck.py [--address 127.0.0.1:50051] [--service NAME] [--timeout SECONDS]
                          [--tls-ca CA.pem [--server-name NAME] [--tls-cert CERT.pem --tls-key KEY.pem]]

Every flag also reads an environment variable (CEAL_HEALTH_ADDRESS, CEAL_HEALTH_TLS_CA,
CEAL_HEALTH_SERVER_NAME, CEAL_HEALTH_TLS_CERT, CEAL_HEALTH_TLS_KEY), so a container started with TLS
(`docker run -e CEAL_HEALTH_TLS_CA=/tls/ca.pem ...`) keeps the image's HEALTHCHECK line as it is;
a flag given on the command line wins over its variable.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def open_channel(
    address: str,
    tls_ca: Path | None = None,
    server_name: str | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
) -> grpc.Channel:
    """Plaintext without `tls_ca`; TLS verified against `tls_ca` with it, as `server_name` if given."""
    if tls_ca is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls_ca.read_bytes(),
        private_key=client_key.read_bytes() if client_key else None,
        certificate_chain=client_cert.read_bytes() if client_cert else None,
    )
    # The probe dials 127.0.0.1, which the certificate rarely names: check it against the name it does carry.
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(address, credentials, options=options)


def check(channel: grpc.Channel, address: str, service: str = "", timeout: float = 3.0) -> bool:
    """True when grpc.health.v1 Check(`service`) answers SERVING within `timeout` seconds."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as exc:
        print(f"unhealthy: {address} answered {exc.code().name}", file=sys.stderr)
        return False
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        print(f"unhealthy: {address} is {name}", file=sys.stderr)
        return False
    return True


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="exit 0 when a gRPC server's health check says SERVING")
    env = os.environ.get
    parser.add_argument(
        "--address", default=env("CEAL_HEALTH_ADDRESS", "127.0.0.1:50051"), help="host:port of the server"
    )
    parser.add_argument("--service", default="", help="service name to check ('' = the whole server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    parser.add_argument(
        "--tls-ca",
        type=Path,
        default=_env_path("CEAL_HEALTH_TLS_CA"),
        help="PEM CA that signed the server certificate: use TLS",
    )
    parser.add_argument(
        "--server-name",
        default=env("CEAL_HEALTH_SERVER_NAME"),
        help="name the server certificate carries (default: the host dialled)",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=_env_path("CEAL_HEALTH_TLS_CERT"),
        help="PEM client certificate, for servers requiring mutual TLS",
    )
    parser.add_argument(
        "--tls-key", type=Path, default=_env_path("CEAL_HEALTH_TLS_KEY"), help="PEM private key of --tls-cert"
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("give --tls-cert and --tls-key together")
    if args.tls_cert is not None and args.tls_ca is None:
        parser.error("--tls-cert needs --tls-ca (the CA to verify the server with)")
    with open_channel(args.address, args.tls_ca, args.server_name, args.tls_cert, args.tls_key) as channel:
        healthy = check(channel, args.address, args.service, args.timeout)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
