"""deploy/docker/healthcheck.py, the image's HEALTHCHECK, against a real gRPC health service on loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.deploy.tools import DOCKER, find_tool, run

SCRIPT = DOCKER / "healthcheck.py"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, health.HealthServicer]]:
    """A bare gRPC server with only the standard health service, as `ceal serve` registers it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


def probe(address: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--address", address, "--timeout", "5", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def test_serving_server_is_healthy(served: tuple[str, health.HealthServicer]) -> None:
    address, servicer = served
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    done = probe(address)
    assert done.returncode == 0, done.stderr


def test_not_serving_server_is_unhealthy(served: tuple[str, health.HealthServicer]) -> None:
    """`ceal serve` says NOT_SERVING while models load and while it drains after SIGTERM."""
    address, servicer = served
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    done = probe(address)
    assert done.returncode == 1
    assert "NOT_SERVING" in done.stderr


def test_unknown_service_is_unhealthy(served: tuple[str, health.HealthServicer]) -> None:
    address, servicer = served
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    done = probe(address, "--service", "ceal.v1.NoSuchService")
    assert done.returncode == 1
    assert "NOT_FOUND" in done.stderr


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port held bound (so nothing else takes it) but never listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def test_nothing_listening_is_unhealthy() -> None:
    with silent_port() as port:
        done = probe(f"127.0.0.1:{port}", "--timeout", "2")
    assert done.returncode == 1
    assert "UNAVAILABLE" in done.stderr or "DEADLINE_EXCEEDED" in done.stderr


@pytest.fixture(scope="module")
def served_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A SERVING health service behind TLS with a throwaway self-signed certificate for ceal.ceal.svc."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "tls.crt", folder / "tls.key"
    run([find_tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=ceal.ceal.svc", "-addext", "subjectAltName=DNS:ceal.ceal.svc",
         "-keyout", str(key), "-out", str(cert)])  # fmt: skip
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield f"127.0.0.1:{port}", cert
    server.stop(None)


def test_tls_server_is_healthy_when_verified(served_tls: tuple[str, Path]) -> None:
    """What the TLS component's exec probes run: the CA given, the certificate's name, not 127.0.0.1's."""
    address, cert = served_tls
    done = probe(address, f"--tls-ca={cert}", "--server-name=ceal.ceal.svc")
    assert done.returncode == 0, done.stderr


def test_tls_settings_come_from_the_environment(served_tls: tuple[str, Path]) -> None:
    """A TLS container keeps the image's HEALTHCHECK line and sets CEAL_HEALTH_* instead; flags still win."""
    address, cert = served_tls
    env = {"CEAL_HEALTH_TLS_CA": str(cert), "CEAL_HEALTH_SERVER_NAME": "ceal.ceal.svc"}
    assert probe(address, env=env).returncode == 0
    assert probe(address, "--timeout", "2", "--server-name=someone-else.example", env=env).returncode == 1


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="plaintext-to-tls"),
        pytest.param(["--server-name=someone-else.example"], id="wrong-name"),
    ],
)
def test_tls_server_is_unhealthy_when_unverified(served_tls: tuple[str, Path], extra: list[str]) -> None:
    address, cert = served_tls
    tls = [f"--tls-ca={cert}"] if extra else []
    done = probe(address, "--timeout", "2", *tls, *extra)
    assert done.returncode == 1
    assert "UNAVAILABLE" in done.stderr or "DEADLINE_EXCEEDED" in done.stderr


def test_client_certificate_needs_a_ca() -> None:
    done = probe("127.0.0.1:1", "--tls-cert=a.pem", "--tls-key=b.pem")
    assert done.returncode == 2
    assert "--tls-ca" in done.stderr
