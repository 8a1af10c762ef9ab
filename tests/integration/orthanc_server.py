"""A real Orthanc PACS for integration tests: own config, own storage, free loopback ports.

`running_orthanc(tmp_path)` writes an Orthanc configuration under `tmp_path`, starts `/usr/sbin/Orthanc`
with the DICOMweb plugin, HTTP basic authentication (a generated user and password), the DICOM server
on a free port (called AET "ORTHANC") and one registered modality for our client AE on 127.0.0.1, so that
C-FIND, C-GET, C-MOVE and C-STORE from the tests are allowed. It yields once `/system` answers, and stops
Orthanc on exit (SIGTERM, then SIGKILL).

Installed by `scripts/install-system-deps` (Debian packages `orthanc`, `orthanc-dicomweb`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
INSTALL_HINT = "run scripts/install-system-deps (as root) to install the orthanc and orthanc-dicomweb packages"

ORTHANC_AET = "ORTHANC"
CLIENT_AET = "CEALTEST"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_START_ATTEMPTS = 3


class OrthancUnavailableError(RuntimeError):
    """Orthanc is not installed here, or did not come up."""


@dataclass(frozen=True)
class OrthancInfo:
    """Where a running test Orthanc listens and how to log in.

    `client_aet` is the registered modality's AE title (use it as the calling AET for DIMSE) and
    `client_store_port` the port Orthanc sends C-MOVE results to on 127.0.0.1 (free when started).
    """

    http_url: str
    dicomweb_url: str
    user: str
    password: str
    dicom_port: int
    aet: str
    client_aet: str = CLIENT_AET
    client_store_port: int = 0


def require_orthanc() -> None:
    """Raise `OrthancUnavailableError` (with an install hint) if Orthanc or its DICOMweb plugin is missing."""
    missing = [str(p) for p in (ORTHANC_BINARY, DICOMWEB_PLUGIN) if not p.exists()]
    if missing:
        raise OrthancUnavailableError(f"missing {', '.join(missing)}: {INSTALL_HINT}")


def _free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now (a small race with other processes remains)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def orthanc_config(
    root: Path, *, http_port: int, dicom_port: int, client_store_port: int, user: str, password: str
) -> dict[str, object]:
    """The Orthanc configuration (as JSON-ready dict) for a test instance whose files live under `root`."""
    return {
        "Name": "ceal-test",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "TemporaryDirectory": str(root / "tmp"),
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "ConcurrentJobs": 1,
        "SaveJobs": False,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "HttpThreadsCount": 8,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {user: password},
        "HttpDescribeErrors": True,
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": True,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": False,
        "DicomModalitiesInDatabase": False,
        "DicomModalities": {
            "ceal": {
                "AET": CLIENT_AET,
                "Host": "127.0.0.1",
                "Port": client_store_port,
                "AllowEcho": True,
                "AllowFind": True,
                "AllowGet": True,
                "AllowMove": True,
                "AllowStore": True,
            }
        },
        # A re-store of the same SOP Instance UID replaces the instance: storing twice never duplicates.
        "OverwriteInstances": True,
        "StableAge": 1,
        # No "Host" key: the plugin then builds WADO-RS URLs from the request's own Host header.
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": False},
    }


def _system_answers(http_url: str, user: str, password: str) -> bool:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"{http_url}/system", headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT_S)


def _log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _start_once(root: Path, attempt: int) -> tuple[subprocess.Popen[bytes], OrthancInfo]:
    http_port, dicom_port, client_store_port = _free_ports(3)
    user, password = "ceal", secrets.token_urlsafe(16)
    for sub in ("storage", "index", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    config_path = root / f"orthanc-{attempt}.json"
    config = orthanc_config(
        root,
        http_port=http_port,
        dicom_port=dicom_port,
        client_store_port=client_store_port,
        user=user,
        password=password,
    )
    config_path.write_text(json.dumps(config, indent=2))
    log_path = root / f"orthanc-{attempt}.log"
    http_url = f"http://127.0.0.1:{http_port}"
    info = OrthancInfo(
        http_url=http_url,
        dicomweb_url=f"{http_url}/dicom-web",
        user=user,
        password=password,
        dicom_port=dicom_port,
        aet=ORTHANC_AET,
        client_store_port=client_store_port,
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ORTHANC_BINARY), str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=root
        )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise OrthancUnavailableError(
                f"Orthanc exited with code {process.returncode} at start; log tail:\n{_log_tail(log_path)}"
            )
        if _system_answers(http_url, user, password):
            return process, info
        time.sleep(0.1)
    _stop(process)
    raise OrthancUnavailableError(
        f"Orthanc did not answer /system within {_START_TIMEOUT_S:.0f} s; log tail:\n{_log_tail(log_path)}"
    )


@contextlib.contextmanager
def running_orthanc(tmp_path: Path) -> Iterator[OrthancInfo]:
    """Start a fresh Orthanc whose storage, index, config and log live under `tmp_path`; stop it on exit.

    Retries on a fresh set of ports if Orthanc exits at start (another process took a port we picked).
    """
    require_orthanc()
    last_error: OrthancUnavailableError | None = None
    for attempt in range(_START_ATTEMPTS):
        try:
            process, info = _start_once(tmp_path, attempt)
        except OrthancUnavailableError as error:
            last_error = error
            continue
        try:
            yield info
        finally:
            _stop(process)
        return
    assert last_error is not None
    raise last_error
