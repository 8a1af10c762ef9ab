"""Screenshots of the labelling console and its figures: submit → next image latency, page weight.

Trains two small model versions on synthetic lesions (about a minute on 2 CPU cores), serves them with a
tokens file, fills a pool, labels a few images as two annotators, starts the console and drives Debian's
headless Chromium through it:

    .venv/bin/python scripts/console_tour.py --out runs/console-tour [--shots docs/img] [--latency 50]

Writes console-worklist.png, console-editor.png and console-dashboard.png to --shots, and prints the median
time from clicking "Submit" to the next image drawn, over --latency submissions, and the bytes of the page's
HTML, CSS and JS (as served, uncompressed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from ceal.trainer.train import Dataset

ROOT = Path(__file__).resolve().parent.parent
TOKENS = {
    "dr-ada": {"token": "tour-annotator", "role": "annotator"},
    "dr-ben": {"token": "tour-annotator-2", "role": "annotator"},
    "ops": {"token": "tour-admin", "role": "admin"},
}
H, W = 96, 128


def _data() -> Dataset:
    from ceal.trainer.data.synth import case_rng, make_case
    from ceal.trainer.train import Dataset

    cases = [make_case(case_rng(1, i), H, W) for i in range(64)]
    return Dataset(
        [f"c{i}" for i in range(64)],
        np.stack([c.image for c in cases]),
        np.stack([(c.mask > 127).astype(np.uint8) for c in cases]),
    )


def train_first(out: Path) -> Path:
    """A checkpoint trained on 48 synthetic cases (reused when `out` already holds it)."""
    from ceal.trainer.train import TrainConfig, train_and_save
    from ceal.trainer.unet import UNetConfig

    ckpt = out / "ckpt-48"
    if not (ckpt / "config.json").exists() and not any(ckpt.glob("*.pt")):
        data = _data()
        cfg = TrainConfig(height=H, width=W, epochs=16, batch_size=8, seed=0)
        unet = UNetConfig(base_filters=8, depth=3)
        train_and_save(data.subset(list(range(48))), data.subset(list(range(48, 64))), ckpt, cfg, unet, progress=False)
    return ckpt


def export(ckpt: Path, models: Path) -> None:
    from ceal.trainer.export import export_model
    from ceal.trainer.unet import load_checkpoint

    model, training = load_checkpoint(ckpt)
    export_model(model, training, models, "lesion")


def fine_tune(ckpt: Path, out: Path) -> Path:
    """The next version: `ckpt` trained 12 epochs more (what `ceal loop` does once labels arrive)."""
    from ceal.trainer.train import TrainConfig, train_and_save
    from ceal.trainer.unet import load_checkpoint

    data = _data()
    model, _ = load_checkpoint(ckpt)
    cfg = TrainConfig(height=H, width=W, epochs=12, batch_size=8, seed=1)
    nxt = out / "ckpt-v2"
    if (nxt / "model.pt").exists():  # trained by an earlier tour: exported again, after this tour's labels
        return nxt
    train_and_save(data.subset(list(range(48))), data.subset(list(range(48, 64))), nxt, cfg, init=model, progress=False)
    return nxt


def pool_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    from ceal.trainer.data.synth import case_rng, make_case

    cases = [make_case(case_rng(7, i), H, W) for i in range(n)]
    return np.stack([c.image for c in cases]), np.stack([(c.mask > 127).astype(np.uint8) for c in cases])


def browser(profile: Path) -> WebDriver:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1600,940",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "console-tour")
    parser.add_argument("--shots", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--latency", type=int, default=50, help="submissions timed (0: none)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import uvicorn
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ceal.client import Client, pool_image
    from ceal.console import create_app
    from ceal.service.server import ServerConfig, create_server

    args.out.mkdir(parents=True, exist_ok=True)
    args.shots.mkdir(parents=True, exist_ok=True)
    ckpt = train_first(args.out)
    models = args.out / f"models-{int(time.time())}"
    export(ckpt, models)
    tokens = args.out / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    state = args.out / f"state-{int(time.time())}"
    running = create_server(
        ServerConfig(models=models, address="127.0.0.1:0", state=str(state), tokens=tokens, watch_interval=0.5)
    )
    address = f"127.0.0.1:{running.port}"
    images, truth = pool_images(60 + args.latency)
    with Client(address, token=TOKENS["ops"]["token"]) as admin:
        named = [pool_image(img, name=f"derm/case_{i:03d}.jpg") for i, img in enumerate(images)]
        ids = [i for i, _ in admin.register_images(named, pool="dermatology")]
        admin.score_pool(pool="dermatology", samples=8)
    for who, token, picks in (("dr-ben", "tour-annotator-2", range(0, 9)), ("dr-ada", "tour-annotator", range(9, 14))):
        with Client(address, token=token) as c:
            for i in picks:
                c.submit_label(ids[i], truth[i], annotator=who, pool="dermatology", seconds_spent=40 + 7 * i)
    print("14 labels in; training version 2 (the server hot-loads it and rescores the pool)", flush=True)
    export(fine_tune(ckpt, args.out), models)
    with Client(address, token=TOKENS["ops"]["token"]) as admin:
        while len(admin.list_models()) < 2:
            time.sleep(0.5)
        while (s := admin.pool_stats(pool="dermatology")).scored_fresh < s.images:
            time.sleep(1.0)
    server = uvicorn.Server(uvicorn.Config(create_app(address), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    driver = browser(args.out / "profile")
    wait = WebDriverWait(driver, 120, poll_frequency=0.05)

    def tid(name: str) -> tuple[str, str]:
        return (By.CSS_SELECTOR, f"[data-testid={name}]")

    def shown() -> str:
        return driver.find_element(*tid("image-canvas")).get_attribute("data-image-id") or ""

    try:
        driver.get(url + "/")
        wait.until(lambda d: d.find_element(*tid("login-token")).is_displayed())
        driver.find_element(*tid("login-token")).send_keys("tour-annotator")
        driver.find_element(*tid("login-submit")).click()
        wait.until(lambda d: d.find_elements(*tid("worklist-item")) and shown())
        driver.find_element(By.ID, "show-heat").click()  # the worklist shot: image and proposal only
        driver.save_screenshot(str(args.shots / "console-worklist.png"))
        driver.find_element(By.ID, "show-heat").click()
        # The editor shot on an image of a random list: the top of the CEAL list is, for this small model,
        # uncertain almost everywhere; a typical image shows where the uncertainty sits.
        before = shown()
        driver.find_element(By.CSS_SELECTOR, "#strategy-select option[value=random]").click()
        wait.until(lambda d: shown() not in ("", before))

        canvas = driver.find_element(*tid("mask-canvas"))
        box = driver.execute_script("return arguments[0].getBoundingClientRect().width", canvas)
        chain = ActionChains(driver).move_to_element_with_offset(canvas, int(-0.40 * box), int(-0.30 * box))
        chain.click_and_hold()
        for dx, dy in ((0.06, -0.02), (0.06, -0.01), (0.05, 0.0)):
            chain.move_by_offset(int(dx * box), int(dy * box))
        chain.release().perform()
        driver.save_screenshot(str(args.shots / "console-editor.png"))

        timings: list[float] = []
        if args.latency:
            k = driver.find_element(By.ID, "k-input")
            k.clear()
            k.send_keys(str(min(50, args.latency)))
            driver.find_element(By.ID, "reload").click()
            wait.until(lambda d: len(d.find_elements(*tid("worklist-item"))) >= min(50, args.latency))
            driver.execute_script("window.cealTimings.length = 0")
            for n in range(args.latency):
                before = shown()
                driver.find_element(*tid("submit-label")).click()
                wait.until(lambda d: shown() not in ("", before))  # noqa: B023 - waited on at once
                wait.until(lambda d: d.execute_script("return window.cealTimings.length") > n)  # noqa: B023
            timings = [float(t) for t in driver.execute_script("return Array.from(window.cealTimings)")]

        driver.find_element(By.ID, "tab-dashboard").click()
        wait.until(lambda d: d.find_elements(*tid("stat-human-labels")))
        driver.save_screenshot(str(args.shots / "console-dashboard.png"))
        weight = driver.execute_script(
            "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
            ".filter(e => !e.name.includes('/api/')).map(e => [e.name, e.decodedBodySize])"
        )
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(10)
        running.stop(grace=2.0)
    static = sorted({name: size for name, size in weight}.items())
    total = sum(size for _, size in static)
    print("page weight (bytes, uncompressed):")
    for name, size in static:
        print(f"  {size:7d}  {name.removeprefix(url)}")
    print(f"  {total:7d}  total")
    if timings:
        print(
            f"submit → next image drawn over {len(timings)} images: median {statistics.median(timings):.0f} ms, "
            f"p90 {sorted(timings)[int(0.9 * (len(timings) - 1))]:.0f} ms, max {max(timings):.0f} ms"
        )
    print(f"screenshots in {args.shots}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
