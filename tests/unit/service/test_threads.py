"""onnxruntime intra-op threads from the cgroup CPU limit, `--threads`, and the one log line saying so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ceal.service import runtime
from ceal.service.runtime import cgroup_cpu_limit, choose_threads
from tests.support.server import in_process


def _v2(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text + "\n")
    return root


def _v1(root: Path, quota: str, period: str, folder: str = "cpu") -> Path:
    (root / folder).mkdir(parents=True)
    (root / folder / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / folder / "cpu.cfs_period_us").write_text(period + "\n")
    return root


@pytest.fixture
def many_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16-CPU node, so that a limit of 2 is visibly what decides."""
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 16)


def test_cgroup_v2_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(_v2(tmp_path / "a", "200000 100000")) == (2.0, "cgroup v2 cpu.max 200000 100000")
    assert cgroup_cpu_limit(_v2(tmp_path / "b", "150000 100000")) == (1.5, "cgroup v2 cpu.max 150000 100000")
    assert cgroup_cpu_limit(_v2(tmp_path / "c", "max 100000")) is None
    assert cgroup_cpu_limit(_v2(tmp_path / "d", "garbage")) is None
    assert cgroup_cpu_limit(tmp_path / "missing") is None


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(_v1(tmp_path / "a", "400000", "100000"))[0] == 4.0  # type: ignore[index]
    assert cgroup_cpu_limit(_v1(tmp_path / "b", "50000", "100000", "cpu,cpuacct"))[0] == 0.5  # type: ignore[index]
    assert cgroup_cpu_limit(_v1(tmp_path / "c", "-1", "100000")) is None


@pytest.mark.usefixtures("many_cpus")
def test_threads_follow_the_limit_rounded_down_and_the_flag_wins(tmp_path: Path) -> None:
    assert choose_threads(cgroup_root=_v2(tmp_path / "two", "200000 100000")).threads == 2
    assert choose_threads(cgroup_root=_v2(tmp_path / "one-and-a-half", "150000 100000")).threads == 1
    assert choose_threads(cgroup_root=_v2(tmp_path / "tenth", "10000 100000")).threads == 1  # never 0
    assert choose_threads(cgroup_root=_v2(tmp_path / "huge", "6400000 100000")).threads == 16  # capped by CPUs
    assert choose_threads(cgroup_root=_v2(tmp_path / "none", "max 100000")).threads == 16
    flag = choose_threads(3, cgroup_root=tmp_path / "two")
    assert (flag.threads, flag.reason) == (3, "--threads")


@pytest.mark.usefixtures("many_cpus")
def test_a_server_in_a_two_cpu_cgroup_chooses_two_threads_and_says_so(
    models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As `docker run --cpus=2` on a 16-CPU node: cpu.max "200000 100000" → 2 threads in every session."""
    cgroup = _v2(tmp_path / "cgroup", "200000 100000")
    with caplog.at_level(logging.INFO, logger="ceal.service.server"), in_process(models_dir, cgroup_root=cgroup) as s:
        sessions = [(m.whole, m.prefix, m.suffix) for m in s.registry.models()]
    lines = [r.getMessage() for r in caplog.records if "intra-op threads" in r.getMessage()]
    assert lines == [
        "onnxruntime intra-op threads per session: 2 (cgroup v2 cpu.max 200000 100000 = 2 CPUs, 16 usable)"
    ]
    assert sessions and all(
        session.get_session_options().intra_op_num_threads == 2 for trio in sessions for session in trio
    )


def test_ceal_serve_threads_flag_reaches_the_sessions_log_line(models_dir: Path, tmp_path: Path) -> None:
    from tests.support.server import ServerProcess

    server = ServerProcess(models_dir, tmp_path / "state", tmp_path / "server.log", "--threads", "3")
    try:
        assert server.terminate() == 0
    finally:
        if server.proc.poll() is None:
            server.kill()
    log = (tmp_path / "server.log").read_text()
    assert "onnxruntime intra-op threads per session: 3 (--threads)" in log
    assert log.count("intra-op threads") == 1  # one line, not one per session
