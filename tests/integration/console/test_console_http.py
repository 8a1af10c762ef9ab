"""The console's HTTP surface without a browser: cookie flags, CSRF, same-origin, readable errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from typing import Any

import pytest

from tests.integration.console.conftest import POOL, TOKENS, Console

pytestmark = pytest.mark.slow


def _call(
    console: Console, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(console.url + path, data=data, method=method, headers=headers or {})
    if body is not None and "content-type" not in {k.lower() for k in request.headers}:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def _login(console: Console, token: str) -> tuple[str, str, str]:
    """(cookie header, csrf token, raw Set-Cookie)."""
    status, me, headers = _call(console, "POST", "/api/login", {"token": token})
    assert status == 200, me
    raw = headers["set-cookie"]
    jar = SimpleCookie(raw)
    return f"ceal_session={jar['ceal_session'].value}", str(me["csrf"]), raw


def test_the_session_cookie_is_httponly_and_strict_and_the_token_never_comes_back(console: Console) -> None:
    cookie, csrf, raw = _login(console, TOKENS["dr-ada"]["token"])
    assert "httponly" in raw.lower() and "samesite=strict" in raw.lower()
    status, me, headers = _call(console, "GET", "/api/me", headers={"cookie": cookie})
    assert status == 200 and me["name"] == "dr-ada" and me["role"] == "annotator" and me["csrf"] == csrf
    assert TOKENS["dr-ada"]["token"] not in json.dumps(me) and TOKENS["dr-ada"]["token"] not in raw
    assert "default-src 'self'" in headers["content-security-policy"] and headers["cache-control"] == "no-store"


def test_state_changes_need_the_csrf_token_the_same_origin_and_json(console: Console) -> None:
    cookie, csrf, _ = _login(console, TOKENS["dr-ada"]["token"])
    body = {"pool": POOL, "image_id": "x"}
    status, out, _ = _call(console, "POST", "/api/skip", body, {"cookie": cookie})
    assert status == 403 and "CSRF" in out["error"]
    status, out, _ = _call(
        console, "POST", "/api/skip", body, {"cookie": cookie, "x-csrf-token": csrf, "origin": "https://evil.example"}
    )
    assert status == 403 and "other sites" in out["error"]
    form = b"pool=ward-7&image_id=x"
    status, out, _ = _call(
        console,
        "POST",
        "/api/skip",
        form,
        {"cookie": cookie, "x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 415
    status, out, _ = _call(console, "POST", "/api/skip", body, {"cookie": cookie, "x-csrf-token": csrf})
    assert status == 404 and out["error"].startswith("The ceal service says:")  # no such image: a sentence


def test_signed_out_and_bad_requests_get_readable_messages(console: Console) -> None:
    status, out, _ = _call(console, "GET", "/api/worklist")
    assert status == 401 and "Sign in" in out["error"]
    cookie, csrf, _ = _login(console, TOKENS["dr-ada"]["token"])
    status, out, _ = _call(console, "GET", "/api/worklist?strategy=best", headers={"cookie": cookie})
    assert status == 400 and "ceal" in out["error"]
    bad = {"pool": POOL, "image_id": "x", "height": 2, "width": 2, "mask": "AAA=", "idempotency_key": "k"}
    status, out, _ = _call(console, "POST", "/api/label", bad, {"cookie": cookie, "x-csrf-token": csrf})
    assert status == 400 and "4" in out["error"]  # the mask has 2 pixels; 2 x 2 = 4 are needed
    status, out, _ = _call(console, "POST", "/api/login", {"token": "wrong"})
    assert status == 401 and "not known" in out["error"] and "Traceback" not in json.dumps(out)


def test_a_viewer_cannot_submit_even_without_the_page(console: Console) -> None:
    cookie, csrf, _ = _login(console, TOKENS["vic-viewer"]["token"])
    body = {"pool": POOL, "image_id": "x", "height": 1, "width": 1, "mask": "AA==", "idempotency_key": "k"}
    status, out, _ = _call(console, "POST", "/api/label", body, {"cookie": cookie, "x-csrf-token": csrf})
    assert status == 403 and "viewer" in out["error"]
