"""Client connection settings: addresses checked, the environment's defaults, the shared CLI flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ceal.client.channel import DEFAULT_ADDRESS, check_address, resolve_settings
from ceal.client.connect import add_connection_arguments, client_options
from ceal.client.results import readable


@pytest.mark.parametrize(
    "good", ["127.0.0.1:50051", "ceal.example.org:443", "[::1]:50051", "dns:///ceal:50051", "unix:/tmp/s"]
)
def test_good_addresses(good: str) -> None:
    assert check_address(good) == good


@pytest.mark.parametrize("bad", ["", "127.0.0.1:", "127.0.0.1", ":50051", "host:0", "host:65536", "a b:1", "host:port"])
def test_bad_addresses_say_what_to_write(bad: str) -> None:
    with pytest.raises(ValueError, match=r"host:port|empty"):
        check_address(bad)


def test_environment_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CEAL_SERVER", raising=False)
    monkeypatch.delenv("CEAL_TOKEN", raising=False)
    plain = resolve_settings()
    assert (plain.address, plain.token) == (DEFAULT_ADDRESS, None)
    monkeypatch.setenv("CEAL_SERVER", "ceal.internal:7000")
    monkeypatch.setenv("CEAL_TOKEN", " from-env \n")
    env = resolve_settings()
    assert (env.address, env.token) == ("ceal.internal:7000", "from-env")
    token_file = tmp_path / "t"
    token_file.write_text("from-file\n")
    assert resolve_settings("h:1", token_file=token_file).token == "from-file"  # a file beats the environment
    assert resolve_settings("h:1", token="given").token == "given"
    with pytest.raises(ValueError, match="token file"):
        resolve_settings("h:1", token_file=tmp_path / "missing")
    monkeypatch.setenv("CEAL_SERVER", "broken:")
    with pytest.raises(ValueError, match="host:port"):
        resolve_settings()


def test_cli_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEAL_TOKEN", raising=False)
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    ca = tmp_path / "ca.pem"
    args = parser.parse_args(["--server", "h:9", "--token", "t", "--tls-ca", str(ca)])
    assert client_options(args) == {
        "address": "h:9",
        "token": "t",
        "tls": False,
        "root_certificates": ca,
        "client_certificate": None,
        "client_key": None,
    }
    with pytest.raises(ValueError, match="--tls-cert and --tls-key"):
        client_options(parser.parse_args(["--tls-cert", str(ca)]))


def test_readable_numbers() -> None:
    assert readable(0.0) == "0"
    assert readable(1.234567e-5) == "1.235e-05"
    assert readable(0.0123456) == "0.0123"
    assert readable(0.5) == "0.5000"
    assert readable(12.3456) == "12.35"
    assert readable(float("nan")) == "nan"
