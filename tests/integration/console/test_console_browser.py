"""The labelling console in a real headless Chromium, against a real ceal server with tokens.

Sign in, take the worklist, paint a stroke, undo and redo it, submit, and read the label back through the
SDK's ExportLabels; a double click stores one label; a viewer is refused with a visible message; nothing
but the console is reachable from the browser, and the page still works.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from ceal.client import Client, LabelRecord
from tests.integration.console.conftest import POOL, TOKENS, Console
from tests.integration.console.pages import (
    error_text,
    painted,
    select_pool,
    sign_in,
    tid,
    until,
    visible,
    wait_image,
)

pytestmark = pytest.mark.slow
ANNOTATOR = TOKENS["dr-ada"]["token"]


def _labels(console: Console) -> dict[str, LabelRecord]:
    with Client(console.grpc, token=ANNOTATOR) as client:
        return {r.image_id: r for r in client.export_labels(pool=POOL)}


def _select_pool(driver: WebDriver) -> str:
    return select_pool(driver, POOL)


def test_sign_in_shows_name_role_and_the_worklist(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console.url, ANNOTATOR)
    assert browser.find_element(By.ID, "who").text == "dr-ada"
    assert browser.find_element(By.ID, "role").text.lower() == "annotator"
    first = _select_pool(browser)
    items = until(browser, lambda d: d.find_elements(*tid("worklist-item")), "no worklist items")
    assert len(items) == 10  # k defaults to 10; the pool holds 14
    assert "#1" in items[0].text and "lease" in items[0].text
    assert first == items[0].get_attribute("data-image-id")
    cookie = browser.get_cookie("ceal_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # the session is out of the page's reach


def test_stroke_undo_redo_submit_reaches_the_store(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console.url, ANNOTATOR)
    image_id = _select_pool(browser)
    browser.find_element(By.ID, "clear").click()
    until(browser, lambda d: painted(d) == 0, "clear left pixels")
    canvas = visible(browser, "mask-canvas")
    # On screen the canvas is scaled by the view's zoom: its bounding box, not its CSS size, says how big.
    width = browser.execute_script("return arguments[0].getBoundingClientRect().width", canvas)
    # A horizontal stroke across the middle, from 20 % to 80 % of the width (offsets from the centre).
    (
        ActionChains(browser)
        .move_to_element_with_offset(canvas, int(-0.3 * width), 0)
        .click_and_hold()
        .move_by_offset(int(0.3 * width), 0)
        .move_by_offset(int(0.3 * width), 0)
        .release()
        .perform()
    )
    until(browser, lambda d: painted(d) > 0, "the stroke painted nothing")
    stroke = painted(browser)
    browser.find_element(*tid("undo")).click()
    until(browser, lambda d: painted(d) == 0, "undo did not remove the stroke")
    browser.find_element(By.ID, "redo").click()
    until(browser, lambda d: painted(d) == stroke, "redo did not bring the stroke back")
    browser.find_element(*tid("submit-label")).click()
    wait_image(browser, other_than=image_id, pool=POOL)

    record = _labels(console)[image_id]
    h, w = record.mask.shape
    row = record.mask[h // 2 - 1 : h // 2 + 2]
    assert row[:, int(0.3 * w) : int(0.7 * w)].any(axis=0).all()  # every column the stroke crossed
    assert not record.mask[: h // 4].any() and not record.mask[-h // 4 :].any()  # nothing far from it
    assert int((record.mask != 0).sum()) == stroke
    assert record.annotator == "dr-ada" and record.version == 1 and record.seconds_spent > 0


def test_double_click_on_submit_stores_one_label(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console.url, ANNOTATOR)
    image_id = _select_pool(browser)
    ActionChains(browser).double_click(visible(browser, "submit-label")).perform()
    wait_image(browser, other_than=image_id, pool=POOL)
    record = _labels(console)[image_id]
    assert record.version == 1  # a second stored label would be version 2


def test_skip_gives_the_image_back(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console.url, ANNOTATOR)
    image_id = _select_pool(browser)
    visible(browser, "skip").click()
    wait_image(browser, other_than=image_id, pool=POOL)
    with Client(console.grpc, token=TOKENS["ops"]["token"]) as client:
        view = client.pool_image(image_id, pool=POOL)
    assert view.lease_annotator == "" and view.label is None


def test_dashboard_counts_the_human_labels(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console.url, ANNOTATOR)
    _select_pool(browser)
    browser.find_element(By.ID, "tab-dashboard").click()
    stat = visible(browser, "stat-human-labels")
    expected = str(len(_labels(console)))
    until(browser, lambda d: d.find_element(*tid("stat-human-labels")).text == expected, f"count is not {expected}")
    board = browser.find_element(*tid("dashboard")).text.lower()
    assert "dr-ada" in board and "learning curve" in board and "lesion v1" in board
    assert stat.text == expected


def test_viewer_is_refused_with_a_visible_message(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console.url, TOKENS["vic-viewer"]["token"])
    assert browser.find_element(By.ID, "role").text.lower() == "viewer"
    until(browser, lambda d: "viewer" in error_text(d), "no visible refusal for the viewer")
    assert "annotator role" in error_text(browser)
    assert not browser.find_element(*tid("submit-label")).is_enabled()
    assert browser.find_element(By.ID, "viewer-note").is_displayed()


def test_an_unknown_token_is_refused_on_the_sign_in_page(browser: WebDriver, console: Console) -> None:
    sign_in(browser, console.url, "not-a-token")
    until(browser, lambda d: "not known" in error_text(d), "no visible refusal for a wrong token")
    assert not browser.find_element(By.ID, "app").is_displayed()
    assert "Traceback" not in browser.page_source


def test_the_page_needs_nothing_but_the_console(browser: WebDriver, console: Console) -> None:
    # The browser resolves no host name but 127.0.0.1 (see conftest); the page must still load fully.
    browser.delete_all_cookies()
    browser.get(console.url + "/")
    until(browser, lambda d: d.find_element(By.ID, "server-name").text == console.grpc, "the page's modules never ran")
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(console.url + "/") for r in resources), resources
    assert {r.rsplit("/", 1)[-1] for r in resources} >= {"console.css", "main.js", "editor.js", "raster.js"}
    reached = browser.execute_async_script(
        "const done = arguments[0]; fetch('http://example.org/').then(() => done(true), () => done(false));"
    )
    assert reached is False


def test_without_tokens_the_console_says_so_and_works(browser: WebDriver, open_console: Console) -> None:
    browser.delete_all_cookies()
    browser.get(open_console.url + "/")
    until(browser, lambda d: d.find_element(By.ID, "no-auth").is_displayed(), "no word about the open server")
    sign_in(browser, open_console.url, "", name="Dr Grace")
    assert browser.find_element(By.ID, "auth-note").is_displayed()
    image_id = _select_pool(browser)
    visible(browser, "submit-label").click()
    wait_image(browser, other_than=image_id, pool=POOL)
    with Client(open_console.grpc) as client:
        stored = {r.image_id: r for r in client.export_labels(pool=POOL)}
    assert stored[image_id].annotator == "Dr Grace"
    assert np.array_equal(stored[image_id].mask.shape, (48, 64))


def test_polygon_fill_holes_and_eraser_in_the_page(browser: WebDriver, console: Console) -> None:
    browser.delete_all_cookies()
    browser.get(console.url + "/")
    visible(browser, "login-token")
    out = browser.execute_async_script(
        """
        const done = arguments[0];
        import('/static/js/raster.js').then((R) => {
          const w = 10, h = 8, m = new Uint8Array(w * h);
          const square = R.fillPolygon(m, w, h, [[2, 2], [8, 2], [8, 6], [2, 6]], 1);   // 6 x 4 pixels
          m[3 * w + 4] = 0; m[4 * w + 5] = 0;                                          // two holes
          const holes = R.fillHoles(m, w, h, 1);
          const erased = R.stamp(m, w, h, 2.5, 2.5, 0.5, 0);                             // one pixel
          done({square, holes, erased, total: m.reduce((n, v) => n + v, 0), b64: R.base64Of(m)});
        }, (e) => done({error: String(e)}));
        """
    )
    assert out.get("error") is None, out
    assert (out["square"], out["holes"], out["erased"], out["total"]) == (24, 2, 1, 23)
    mask = np.frombuffer(base64.b64decode(out["b64"]), np.uint8).reshape(8, 10)
    assert mask[2:6, 2:8].sum() == 23 and mask[2, 2] == 0 and mask.sum() == 23


def test_window_level_changes_a_grayscale_image(browser: WebDriver, console: Console) -> None:
    rng = np.random.default_rng(0)
    ct = (rng.integers(0, 400, size=(40, 52)) + np.linspace(0, 3000, 52)[None, :]).astype(np.uint16)
    with Client(console.grpc, token=TOKENS["ops"]["token"]) as admin:
        admin.register_images([ct], pool="ct-slices")
        admin.score_pool(pool="ct-slices", samples=4)
    sign_in(browser, console.url, ANNOTATOR)
    select_pool(browser, "ct-slices")
    until(browser, lambda d: d.find_element(By.ID, "wl-controls").is_displayed(), "no window/level for grayscale")
    read = "const c = arguments[0]; return Array.from(c.getContext('2d').getImageData(26, 20, 1, 1).data);"
    canvas = browser.find_element(*tid("image-canvas"))
    until(browser, lambda d: canvas.get_attribute("width") == "52", "the grayscale image was not drawn")
    before = browser.execute_script(read, canvas)
    browser.execute_script(
        "const l = document.getElementById('level'); l.value = l.min; l.dispatchEvent(new Event('input'));"
    )
    after = browser.execute_script(read, canvas)
    assert before[0] == before[1] == before[2] and after[0] > before[0]  # gray; a lower level brightens it


def test_two_posts_with_one_idempotency_key_store_one_label(browser: WebDriver, console: Console) -> None:
    # Past the page's in-flight guard: the same submission sent twice at once, as a retry would.
    sign_in(browser, console.url, ANNOTATOR)
    image_id = _select_pool(browser)
    out = browser.execute_async_script(
        """
        const [id, pool, done] = arguments;
        const c = document.querySelector('[data-testid=image-canvas]');
        import('/static/js/api.js').then(async (api) => {
          const body = {pool, image_id: id, height: c.height, width: c.width, seconds: 3,
                        mask: btoa('\\u0000'.repeat(c.width * c.height)), idempotency_key: 'retry-' + id};
          const both = await Promise.all([api.post('/api/label', body), api.post('/api/label', body)]);
          done(both);
        }).catch((e) => done({error: String(e)}));
        """,
        image_id,
        POOL,
    )
    assert isinstance(out, list), out
    assert out[0] == out[1] and out[0]["version"] == 1
    assert _labels(console)[image_id].version == 1
