"""Small page helpers for the console's browser tests: explicit waits on conditions, never sleeps."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.console.conftest import WAIT


def tid(name: str) -> tuple[str, str]:
    return (By.CSS_SELECTOR, f"[data-testid={name}]")


def until(driver: WebDriver, condition: Any, message: str, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def visible(driver: WebDriver, name: str) -> WebElement:
    def shown(d: WebDriver) -> WebElement | bool:
        found = d.find_elements(*tid(name))
        return found[0] if found and found[0].is_displayed() else False

    return until(driver, shown, f"{name} never became visible")  # type: ignore[no-any-return]


def error_text(driver: WebDriver) -> str:
    box = driver.find_element(*tid("error-message"))
    return box.text if box.is_displayed() else ""


def sign_in(driver: WebDriver, url: str, token: str, name: str = "") -> None:
    driver.delete_all_cookies()
    driver.get(url + "/")
    visible(driver, "login-token").send_keys(token)
    if name:
        until(driver, lambda d: d.find_element(By.ID, "login-annotator").is_displayed(), "no name field")
        driver.find_element(By.ID, "login-annotator").send_keys(name)
    driver.find_element(*tid("login-submit")).click()
    until(driver, lambda d: d.find_element(By.ID, "app").is_displayed() or error_text(d), "sign-in never finished")


def shown_image(driver: WebDriver, pool: str | None = None) -> str:
    """The id of the image on the canvas ('' when none, or when it is not from `pool`)."""
    canvas = driver.find_element(*tid("image-canvas"))
    if pool is not None and canvas.get_attribute("data-pool") != pool:
        return ""
    return canvas.get_attribute("data-image-id") or ""


def wait_image(driver: WebDriver, other_than: str = "", pool: str | None = None) -> str:
    """Wait for an image (of `pool`, when given) other than `other_than` on the canvas; its id."""

    def opened(d: WebDriver) -> str | bool:
        shown = shown_image(d, pool)
        return shown if shown not in ("", other_than) else False

    return until(driver, opened, f"no image other than {other_than!r} opened")  # type: ignore[no-any-return]


def select_pool(driver: WebDriver, pool: str) -> str:
    """Choose `pool` in the pool picker once it is listed; returns the id of its first image once shown."""
    until(
        driver,
        lambda d: d.execute_script(
            "const s = document.querySelector('[data-testid=pool-select]');"
            "if (![...s.options].some(o => o.value === arguments[0])) return false;"
            "if (s.value !== arguments[0]) { s.value = arguments[0]; s.dispatchEvent(new Event('change')); }"
            "return true;",
            pool,
        ),
        f"pool {pool!r} never listed",
    )
    return wait_image(driver, pool=pool)


def painted(driver: WebDriver) -> int:
    return int(driver.find_element(*tid("mask-canvas")).get_attribute("data-painted") or "0")
