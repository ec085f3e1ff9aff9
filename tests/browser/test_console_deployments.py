"""A deployment in Chromium against a real server (local backend, real replica processes
from tests/integration/deploy_app.py): its page shows the stable URL, the replicas'
health and the rollout; Rollback asks first, then rolls back to the previous version,
the page following by itself. Assertions are on what the browser shows (and, for the
rollback's effect, on the API)."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from service.client import ResourceRef
from tests.browser.pages import button, path_of, sign_in, text_of, wait_for
from tests.integration.conftest import RunningServer
from tests.integration.test_deployments import recipe

WEB = ResourceRef("deployment", "web", "admin")


def test_a_deployments_page_shows_its_replicas_and_rolls_back(
    browser: WebDriver, console: RunningServer
) -> None:
    hub = console.hub()
    hub.apply(recipe("v1", scale=1))
    hub.wait(WEB, {"running"}, timeout=120)
    hub.apply(recipe("v2", scale=1))
    hub.wait(WEB, {"running"}, generation=2, timeout=120)

    sign_in(browser, console.url, console.token)
    browser.find_element(By.LINK_TEXT, "deployment/web").click()
    wait_for(browser, lambda b: path_of(b) == "/resources/deployment/web", 30, "its page")
    url = f"{console.settings.api_url}/deploy/admin/web/"
    assert browser.find_element(By.LINK_TEXT, url).get_attribute("href") == url
    wait_for(browser, lambda b: text_of(b, "#rollout").startswith("done"), 60, "v2 rolled out")
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#replicas tbody tr")
    v2 = row.get_attribute("data-replica") or ""
    assert "healthy" in row.text and "passed" in row.text and "(current)" in row.text

    button(browser, "Rollback").click()
    question = wait_for(browser, expected_conditions.alert_is_present(), 10, "the confirmation")
    assert "Roll deployment/web back to its previous recipe?" in question.text
    question.accept()
    wait_for(browser, lambda b: "generation 3" in text_of(b, "#rollback-answer"), 30, "rollback")
    assert hub.get(WEB)["generation"] == 3
    # The serving part follows by itself: v1's replica replaces v2's, then the rollout is done.
    wait_for(
        browser,
        lambda b: v2 not in text_of(b, "#replicas") and text_of(b, "#rollout").startswith("done"),
        120,
        "the rollback rolled out",
    )
    refused = [
        e["message"] for e in browser.get_log("browser") if "Security Policy" in e["message"]
    ]
    assert refused == [], "the page's own scripts broke its policy"
