"""`ceal serve` flags → ServerConfig, and configuration mistakes reported in one line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceal.cli.main import build_parser, main
from ceal.service.cli import server_config
from ceal.service.middleware.tls import TLSConfig, TLSError


def _files(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        (tmp_path / name).write_text("x")
        out.append(tmp_path / name)
    return out


def test_defaults_are_safe(tmp_path: Path) -> None:
    config = server_config(build_parser().parse_args(["serve", "--models", str(tmp_path)]))
    assert config.tls is None and config.tokens is None and not config.audit
    assert config.reflection is False and config.otel == "none" and config.max_concurrent_rpcs is None


def test_every_hardening_flag_reaches_the_config(tmp_path: Path) -> None:
    cert, key, ca, tokens = _files(tmp_path, "s.pem", "s.key", "ca.pem", "tokens.json")
    args = build_parser().parse_args([
        "serve", "--models", str(tmp_path), "--tls-cert", str(cert), "--tls-key", str(key),
        "--tls-client-ca", str(ca), "--tokens", str(tokens), "--audit-log", str(tmp_path / "audit.jsonl"),
        "--reflection", "--otel", "otlp", "--otel-endpoint", "collector:4317", "--max-concurrent-rpcs", "32",
        "--shutdown-delay", "2.5",
    ])  # fmt: skip
    config = server_config(args)
    assert config.tls == TLSConfig(cert, key, ca)
    assert (config.tokens, config.audit, config.reflection) == (tokens, True, True)
    assert (config.otel, config.otel_endpoint) == ("otlp", "collector:4317")
    assert (config.max_concurrent_rpcs, config.shutdown_delay) == (32, 2.5)


def test_unknown_exporter_is_an_argument_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve", "--models", str(tmp_path), "--otel", "zipkin"])
    assert info.value.code == 2


def test_incomplete_tls_says_what_is_missing(tmp_path: Path) -> None:
    (cert,) = _files(tmp_path, "s.pem")
    with pytest.raises(TLSError, match="both --tls-cert and --tls-key"):
        TLSConfig.from_paths(cert, None, None)
    with pytest.raises(TLSError, match="needs --tls-cert and --tls-key"):
        TLSConfig.from_paths(None, None, cert)
    with pytest.raises(TLSError, match="does not exist"):
        TLSConfig.from_paths(cert, tmp_path / "missing.key", None)
    assert TLSConfig.from_paths(None, None, None) is None


def test_bad_tokens_file_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"ci": {"token": "t", "role": "superuser"}}')
    assert main(["serve", "--models", str(tmp_path), "--port", "0", "--tokens", str(tokens)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ceal serve: token 'ci': role must be one of") and err.count("\n") == 1
