"""A throwaway PostgreSQL cluster for tests: its own data folder, a free 127.0.0.1 port, stopped afterwards.

Postgres refuses to run as root, so when the tests run as root the cluster belongs to the `postgres` system
user (created by the Debian package; `nobody` otherwise) and every server command runs through `runuser`.
The data folder is made with `tempfile` (pytest's temporary folders are private to root, which the server's
user could not enter). Only TCP on 127.0.0.1 with trust authentication for the `ceal` superuser; fsync is off,
since the cluster dies with the test session (the store still asks for synchronous_commit, see
test_postgres.py). Missing binaries raise PostgresUnavailableError naming scripts/install-system-deps.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PostgresCluster", "PostgresUnavailableError", "find_bindir", "running_postgres"]

SUPERUSER = "ceal"
_SEARCH = ("/usr/lib/postgresql", "/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin", "/usr/bin")


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL cannot be started here; the message says what to install or check."""


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: the newest /usr/lib/postgresql/<major>/bin, else one on PATH."""
    debian = sorted(Path(_SEARCH[0]).glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name or 0))
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    for folder in _SEARCH[1:]:
        if (Path(folder) / "initdb").is_file():
            return Path(folder)
    raise PostgresUnavailableError(
        "PostgreSQL's initdb and pg_ctl were not found: run scripts/install-system-deps (Debian package postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """The user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailableError("running as root, and neither a postgres nor a nobody user exists to run Postgres")


@dataclass
class PostgresCluster:
    """A running cluster. `url(db)` names a database on it; `create_database()` and `create_schema()` give the
    URL of a fresh, empty place for a store."""

    bindir: Path
    folder: Path
    port: int
    user: str | None
    _names: Iterator[int] = field(default_factory=itertools.count)
    _schemas_ready: bool = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str, database: str = "postgres") -> None:
        import psycopg  # only the Postgres tests need the driver

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql.encode())

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{next(self._names)}_{os.getpid()}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self) -> str:
        """A new empty schema in the shared database `schemas`; returns a URL whose connections put it first on
        their search_path, so a store opened on it sees nothing else. Far quicker than a database."""
        if not self._schemas_ready:
            self._admin('CREATE DATABASE "schemas"')
            self._schemas_ready = True
        name = f"s_{next(self._names)}_{os.getpid()}"
        self._admin(f'CREATE SCHEMA "{name}"', "schemas")
        return f"{self.url('schemas')}?options=-csearch_path%3D{name}"

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return _run(self.user, [str(self.bindir / "pg_ctl"), "-D", str(self.data), *args], timeout)

    def log_tail(self, chars: int = 3000) -> str:
        log = self.folder / "server.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no server log)"


def _run(user: str | None, cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)


def _start(bindir: Path, folder: Path, user: str | None) -> PostgresCluster:
    initdb = _run(
        user,
        [str(bindir / "initdb"), "-D", str(folder / "data"), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "-N"],
        120,
    )
    if initdb.returncode != 0:
        raise PostgresUnavailableError(f"initdb failed: {initdb.stderr[-2000:]}")
    for _ in range(5):  # another process may grab the free port between our probe and the server's bind
        cluster = PostgresCluster(bindir, folder, _free_port(), user)
        options = (
            f"-p {cluster.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off -c max_connections=300"
        )
        started = cluster.pg_ctl("-l", str(folder / "server.log"), "-w", "-t", "60", "-o", options, "start")
        if started.returncode == 0:
            return cluster
    raise PostgresUnavailableError(f"Postgres did not start: {cluster.log_tail()}")


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresCluster]:
    """Start a cluster, yield it, stop it (immediate shutdown) and delete its folder."""
    bindir = find_bindir()
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="ceal-postgres-"))
    try:
        if user is not None:
            shutil.chown(folder, user)
        cluster = _start(bindir, folder, user)
        try:
            yield cluster
        finally:
            cluster.pg_ctl("-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
