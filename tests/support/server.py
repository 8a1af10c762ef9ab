"""A real ceal server for tests: in-process on 127.0.0.1:0, or as a subprocess (for SIGKILL/SIGTERM tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ceal.service.server import Running, ServerConfig, create_server


@contextmanager
def in_process(models: Path, state: Path | None = None, **overrides: object) -> Iterator[Running]:
    config = ServerConfig(
        models=models, address="127.0.0.1:0", state=str(state) if state else None, watch_interval=0.2, **overrides
    )  # type: ignore[arg-type]
    running = create_server(config)
    try:
        yield running
    finally:
        running.stop(grace=2.0)


class ServerProcess:
    """`ceal serve` in a subprocess; `address` once it listens."""

    def __init__(self, models: Path, state: Path | str, log: Path, *extra: str) -> None:
        """`state`: a folder (SQLite) or a postgresql:// URL; the port file goes beside the log."""
        self.port_file = log.with_suffix(".port")
        self.port_file.unlink(missing_ok=True)
        self.log = log
        cmd = [
            sys.executable,
            "-m",
            "ceal.cli.main",
            "serve",
            "--models",
            str(models),
            "--state",
            str(state),
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            *extra,
        ]
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
        deadline = time.monotonic() + 60
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.address = f"127.0.0.1:{self.port_file.read_text().strip()}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)
