"""DICOMweb authentication: a bearer token reaches the server in the Authorization header; basic auth and a
token together are refused. Against a local HTTP server that records what it was sent (no PACS needed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from ceal.pacs.dicomweb import DicomWebPacs
from ceal.pacs.errors import PacsRequestError, PacsUnavailableError


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []
    status = 200

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = b"[]"
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    _Recorder.seen, _Recorder.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    finally:
        server.shutdown()
        server.server_close()


def test_a_bearer_token_is_sent(url: str) -> None:
    assert DicomWebPacs(url, token="abc.def", timeout_s=5).find_series() == []
    assert _Recorder.seen == ["Bearer abc.def"]


def test_a_refused_token_says_what_to_check(url: str) -> None:
    _Recorder.status = 401
    with pytest.raises(PacsUnavailableError, match="token"):
        DicomWebPacs(url, token="expired", timeout_s=5).find_series()


def test_basic_auth_and_a_token_together_are_refused(url: str) -> None:
    with pytest.raises(PacsRequestError, match="not both"):
        DicomWebPacs(url, "user", "pw", token="abc")
