"""Fixtures for the console's browser tests: a real ceal server with tokens, a scored pool, the console on
uvicorn in a thread, and Debian's headless Chromium driven by Selenium with no network but 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ceal.client import Client
from tests.support.models import synth_dataset
from tests.support.server import in_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
POOL = "ward-7"
TOKENS = {
    "dr-ada": {"token": "annotator-token-1", "role": "annotator"},
    "vic-viewer": {"token": "viewer-token-1", "role": "viewer"},
    "ops": {"token": "admin-token-1", "role": "admin"},
}
WAIT = 90.0  # seconds: explicit waits are generous, the machine may be loaded


@dataclass(frozen=True)
class Console:
    url: str  # http://127.0.0.1:PORT
    grpc: str  # the ceal server's host:port


class ConsoleThread:
    """uvicorn serving `app` on 127.0.0.1:0 in a daemon thread; `port` once it listens."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, name="console", daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        done = threading.Event()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the console did not start")
            done.wait(0.05)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def register_pool(address: str, token: str | None, n: int = 14, seed: int = 5) -> list[str]:
    with Client(address, token=token) as client:
        ids = [i for i, _ in client.register_images(list(synth_dataset(n, seed=seed).images), pool=POOL)]
        client.score_pool(pool=POOL, samples=4)
    return ids


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-tokens") / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    return path


@pytest.fixture(scope="module")
def console(models_dir: Path, tokens_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    from ceal.console import create_app

    state = tmp_path_factory.mktemp("console-state")
    with in_process(models_dir, state, tokens=tokens_file) as running:
        address = f"127.0.0.1:{running.port}"
        register_pool(address, TOKENS["ops"]["token"])
        with ConsoleThread(create_app(address)) as port:
            yield Console(f"http://127.0.0.1:{port}", address)


@pytest.fixture(scope="module")
def open_console(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The console for a server started without --tokens."""
    from ceal.console import create_app

    with in_process(models_dir, tmp_path_factory.mktemp("open-state")) as running:
        address = f"127.0.0.1:{running.port}"
        register_pool(address, None, n=4, seed=9)
        with ConsoleThread(create_app(address)) as port:
            yield Console(f"http://127.0.0.1:{port}", address)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail("Chromium is missing: run scripts/install-system-deps (Debian chromium, chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        # No network but the console: every host name fails to resolve, and any proxy is refused.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
