"""What browser tests do on the console's pages: sign in, wait, read and click."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

T = TypeVar("T")


def wait_for(
    browser: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 60, what: str = ""
) -> T:
    """``condition(browser)``'s first truthy answer, polled until ``timeout`` seconds pass;
    then an AssertionError naming ``what`` was awaited and the page the browser is on.
    A missing or replaced element (the page not there yet, htmx swapping it) counts as a
    falsy answer; any other exception from ``condition`` ends the wait."""
    waiting = WebDriverWait(
        browser,
        timeout,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    try:
        return waiting.until(condition)
    except TimeoutException:
        awaited = what or getattr(condition, "__qualname__", repr(condition))
        raise AssertionError(
            f"gave up after {timeout} s waiting for {awaited} on {browser.current_url}"
        ) from None


def path_of(browser: WebDriver) -> str:
    """The path of the page the browser is on (``/sign-in``)."""
    return urlparse(browser.current_url).path


def text_of(browser: WebDriver, css: str) -> str:
    """The visible text of the first element ``css`` selects (it must exist)."""
    return browser.find_element(By.CSS_SELECTOR, css).text


def button(within: WebDriver | WebElement, label: str) -> WebElement:
    """The button whose text (or a submit input's value) is ``label``, in ``within``
    (a page or an element, such as a table row)."""
    assert "'" not in label, label
    return within.find_element(
        By.XPATH,
        f".//button[normalize-space()='{label}'] | .//input[@type='submit' and @value='{label}']",
    )


def alert_text(browser: WebDriver) -> str:
    """The text of the page's non-empty ``role=alert`` messages, joined ("" if none)."""
    alerts = browser.find_elements(By.CSS_SELECTOR, "[role=alert]")
    return " ".join(a.text.strip() for a in alerts if a.text.strip())


def sign_in(browser: WebDriver, url: str, token: str) -> None:
    """Sign in at ``url``'s sign-in page with ``token``; returns once the browser has
    left the sign-in page, fails at once with the page's message if it refuses."""
    browser.get(url + "/sign-in")
    browser.find_element(By.ID, "token").send_keys(token)
    button(browser, "Sign in").click()

    def signed_in(b: WebDriver) -> bool:
        if path_of(b) != "/sign-in":
            return True
        refused = alert_text(b)
        assert not refused, f"sign-in refused: {refused}"
        return False

    wait_for(browser, signed_in, 30, "leaving the sign-in page")
