"""Signing in and out of the web console with a token, and the session cookie it sets."""

from __future__ import annotations

from urllib.parse import urlparse

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.pages import alert_text, button, path_of, sign_in, wait_for
from tests.integration.conftest import RunningServer

SESSION_COOKIE = "titan_session"
EVERYONE_S_PAGES = {
    "Resources": "/",
    "New resource": "/new",
    "Jobs": "/jobs",
    "Nodes": "/nodes",
    "Usage": "/usage",
    "Quotas": "/quotas",
    "Tokens": "/tokens",
}
ADMIN_PAGES = {
    "Users": "/admin/users",
    "Groups": "/admin/groups",
    "Alerts": "/admin/alerts",
    "Audit": "/admin/audit",
}


def test_a_wrong_token_is_refused_with_a_message_and_no_cookie(
    browser: WebDriver, console: RunningServer
) -> None:
    browser.get(console.url + "/sign-in")
    browser.find_element(By.ID, "token").send_keys("not-a-titan-token")
    button(browser, "Sign in").click()

    assert wait_for(browser, alert_text, 30, "a role=alert message")
    assert path_of(browser) == "/sign-in"
    assert browser.get_cookie(SESSION_COOKIE) is None


def test_the_admin_signs_in_with_a_cookie_scripts_cannot_read_and_signs_out(
    browser: WebDriver, console: RunningServer
) -> None:
    sign_in(browser, console.url, console.token)

    assert path_of(browser) == "/"
    nav = browser.find_element(By.CSS_SELECTOR, 'nav[aria-label="Main"]')
    links = {
        a.text.strip(): urlparse(a.get_attribute("href") or "").path
        for a in nav.find_elements(By.TAG_NAME, "a")
    }
    assert links.items() >= {**EVERYONE_S_PAGES, **ADMIN_PAGES}.items(), links
    cookie = browser.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert SESSION_COOKIE not in browser.execute_script("return document.cookie")

    button(browser.find_element(By.ID, "sign-out"), "Sign out").click()

    wait_for(browser, lambda b: path_of(b) == "/sign-in", 30, "the sign-in page")
    assert browser.get_cookie(SESSION_COOKIE) is None


def test_a_session_cookie_kept_after_signing_out_no_longer_signs_in(
    browser: WebDriver, console: RunningServer
) -> None:
    sign_in(browser, console.url, console.token)
    kept = browser.get_cookie(SESSION_COOKIE)
    assert kept is not None
    button(browser.find_element(By.ID, "sign-out"), "Sign out").click()
    wait_for(browser, lambda b: path_of(b) == "/sign-in", 30, "the sign-in page")

    browser.add_cookie({k: kept[k] for k in ("name", "value", "path", "httpOnly", "sameSite")})
    browser.get(console.url + "/")

    assert path_of(browser) == "/sign-in"
