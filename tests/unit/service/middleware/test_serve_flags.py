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


def test_transport_and_thread_flags_reach_the_config_and_grpc(tmp_path: Path) -> None:
    from ceal.service.server import transport_options

    defaults = server_config(build_parser().parse_args(["serve", "--models", str(tmp_path)]))
    assert defaults.threads is None  # chosen from the cgroup at start
    assert dict(transport_options(defaults))["grpc.max_connection_age_ms"] == 300_000
    args = build_parser().parse_args([
        "serve", "--models", str(tmp_path), "--threads", "3", "--keepalive-time", "30", "--keepalive-timeout", "5",
        "--max-connection-age", "120", "--max-connection-age-grace", "15",
    ])  # fmt: skip
    config = server_config(args)
    options = dict(transport_options(config))
    assert config.threads == 3
    assert (options["grpc.keepalive_time_ms"], options["grpc.keepalive_timeout_ms"]) == (30_000, 5_000)
    assert (options["grpc.max_connection_age_ms"], options["grpc.max_connection_age_grace_ms"]) == (120_000, 15_000)
    assert options["grpc.keepalive_permit_without_calls"] == 1
    off = server_config(build_parser().parse_args(["serve", "--models", str(tmp_path), "--max-connection-age", "0"]))
    assert "grpc.max_connection_age_ms" not in dict(transport_options(off))


def test_ceal_environment_variables_set_serve_defaults_and_flags_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "CEAL_MODELS": str(tmp_path), "CEAL_HOST": "0.0.0.0", "CEAL_PORT": "6000", "CEAL_STATE": "postgresql://db/x",
        "CEAL_SAMPLES": "12", "CEAL_MAX_QUEUE": "7", "CEAL_THREADS": "2", "CEAL_OTEL": "prometheus",
        "CEAL_MAX_CONNECTION_AGE": "60", "CEAL_TOKENS": str(tmp_path / "t.json"),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    config = server_config(build_parser().parse_args(["serve"]))  # --models not needed: CEAL_MODELS
    assert (config.models, config.address, config.state) == (tmp_path, "0.0.0.0:6000", "postgresql://db/x")
    assert (config.default_samples, config.max_queue, config.threads, config.otel) == (12, 7, 2, "prometheus")
    assert (config.max_connection_age, config.tokens) == (60.0, tmp_path / "t.json")
    assert server_config(build_parser().parse_args(["serve", "--port", "7000"])).address == "0.0.0.0:7000"
    monkeypatch.setenv("CEAL_PORT", "not-a-port")
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve"])
    assert info.value.code == 2 and "--port: invalid int value: 'not-a-port'" in capsys.readouterr().err


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"ceal {version('ceal')}"


def test_background_rescoring_is_adaptive_by_default_and_the_flags_change_it(tmp_path: Path) -> None:
    from ceal.service.pool.scoring import DEFAULT_RESCORE_TOLERANCE
    from ceal.service.server import ServerConfig

    default = server_config(build_parser().parse_args(["serve", "--models", str(tmp_path)]))
    assert default.rescore_tolerance == DEFAULT_RESCORE_TOLERANCE == ServerConfig(tmp_path).rescore_tolerance > 0
    assert default.rescore_min_samples == 0
    args = ["serve", "--models", str(tmp_path), "--rescore-tolerance", "0.002", "--rescore-min-samples", "4"]
    tuned = server_config(build_parser().parse_args(args))
    assert (tuned.rescore_tolerance, tuned.rescore_min_samples) == (0.002, 4)
    fixed = server_config(build_parser().parse_args(["serve", "--models", str(tmp_path), "--rescore-tolerance", "0"]))
    assert fixed.rescore_tolerance == 0.0  # fixed T = --samples


def test_rescore_scale_reaches_the_config_and_a_bad_one_stops_the_start_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ceal.service.server import ServerConfig

    default = server_config(build_parser().parse_args(["serve", "--models", str(tmp_path)]))
    assert default.rescore_scale == 1.0 == ServerConfig(tmp_path).rescore_scale  # off: full resolution
    args = ["serve", "--models", str(tmp_path), "--rescore-scale", "0.5"]
    assert server_config(build_parser().parse_args(args)).rescore_scale == 0.5
    monkeypatch.setenv("CEAL_RESCORE_SCALE", "0.67")
    assert server_config(build_parser().parse_args(["serve", "--models", str(tmp_path)])).rescore_scale == 0.67
    assert main(["serve", "--models", str(tmp_path), "--port", "0", "--rescore-scale", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ceal serve: rescore_scale must be between 0.25 and 1") and err.count("\n") == 1
