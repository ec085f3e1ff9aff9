"""Whole journeys through the web console in Chromium against a real server (local
backend): a cluster from an example to its deletion, what another user sees, a recipe's
problems at their fields, a page elsewhere trying to act for the user, local times, a
job's runs and a run's logs, and the keyboard. Every assertion is on what the browser
shows (or, for what must not have happened, on the API)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select

from service.client import ResourceRef
from tests.browser.pages import alert_text, button, path_of, sign_in, text_of, wait_for
from tests.integration.conftest import RunningServer

PARKED = {"schema_version": 1, "type": "job", "name": "parked", "spec": {"command": "sleep 300"}}
PARKED_PAGE = "/resources/job/parked"
STATUS = "#status .badge"


def type_recipe(browser: WebDriver, text: str) -> None:
    """Replace the editor's recipe by typing ``text``, as a user would."""
    editor = browser.find_element(By.ID, "recipe")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(Keys.DELETE)
    editor.send_keys(text)


def shows(css: str, words: str) -> Any:
    """A wait condition: the element ``css`` selects shows ``words``."""

    def showing(b: WebDriver) -> bool:
        return words in text_of(b, css)

    showing.__qualname__ = f"{css} to show {words!r}"
    return showing


def park_a_job(console: RunningServer) -> ResourceRef:
    """The admin's running ``job/parked`` (a sleep), applied through the API."""
    answer = console.request("PUT", "/api/v1/recipes", json=PARKED)
    assert answer.status_code in (200, 201), answer.text
    job = ResourceRef("job", "parked", "admin")
    console.hub().wait(job, {"running"}, timeout=120)
    return job


def test_a_cluster_from_an_example_runs_scales_stops_and_goes(
    browser: WebDriver, console: RunningServer
) -> None:
    sign_in(browser, console.url, console.token)
    assert "No resources yet" in text_of(browser, "#empty")

    browser.get(console.url + "/new")
    Select(browser.find_element(By.ID, "example")).select_by_visible_text("cpu-cluster")
    button(browser, "Load example").click()
    wait_for(browser, lambda b: "example=cpu-cluster" in b.current_url, 30, "the example")
    recipe = json.loads(browser.find_element(By.ID, "recipe").get_attribute("value") or "")
    assert recipe["name"] == "cpu-cluster"
    # Small enough for a 2-core test machine.
    recipe["spec"]["n_workers"] = 1
    recipe["spec"]["worker"]["memory"] = "1GiB"
    type_recipe(browser, json.dumps(recipe, indent=2))
    wait_for(browser, shows("#problems-box", "No problems found"), 30, "the recipe checked")

    button(browser, "Plan").click()
    wait_for(browser, shows("#plan", "Plan: create"), 30, "the plan")
    button(browser, "Apply").click()
    wait_for(browser, lambda b: path_of(b) == "/resources/cluster/cpu-cluster", 30, "its page")
    browser.execute_script("window.titanSamePage = true")  # gone if the page reloads
    live = browser.find_element(By.ID, "live")

    assert text_of(browser, STATUS) in ("pending", "starting", "running")
    wait_for(browser, shows(STATUS, "running"), 120, "the cluster running")
    wait_for(browser, expected_conditions.staleness_of(live), 30, "the live part refreshed")
    wait_for(browser, shows("#workers-ready", "1 ready of 1 wanted"), 60, "its worker")
    wait_for(
        browser,
        lambda b: "distributed.scheduler" in text_of(b, "#logs"),
        60,
        "the scheduler's log lines",
    )
    wait_for(
        browser,
        lambda b: b.find_elements(By.CSS_SELECTOR, "#charts .uplot"),
        90,  # the charts redraw every 30 s
        "a telemetry chart",
    )
    assert browser.execute_script("return window.titanSamePage") is True, "the page reloaded"

    workers = browser.find_element(By.ID, "workers")
    workers.clear()
    workers.send_keys("2")
    button(browser, "Scale").click()
    wait_for(browser, shows("#workers-ready", "of 2 wanted"), 30, "two workers wanted")
    wait_for(browser, shows("#workers-ready", "2 ready of 2 wanted"), 120, "two workers ready")

    button(browser, "Stop").click()
    wait_for(browser, shows(STATUS, "stopped"), 90, "the cluster stopped")

    generation = text_of(browser, 'label[for="recipe"]')  # "Recipe (JSON), generation N"
    edited = json.loads(browser.find_element(By.ID, "recipe").get_attribute("value") or "")
    assert edited["spec"]["n_workers"] == 2  # the recipe the page shows is the scaled one
    edited["description"] = "Edited in the console."
    type_recipe(browser, json.dumps(edited, indent=2))
    button(browser, "Plan").click()
    wait_for(browser, shows("#plan", "Plan: update"), 30, "the edit's plan")
    assert "Edited in the console." in text_of(browser, "#diff")
    confirm = button(browser, "Apply this plan")
    confirm.click()
    wait_for(browser, expected_conditions.staleness_of(confirm), 30, "the plan applied")
    wait_for(
        browser, lambda b: text_of(b, 'label[for="recipe"]') != generation, 30, "new generation"
    )
    shown = json.loads(browser.find_element(By.ID, "recipe").get_attribute("value") or "")
    assert shown["description"] == "Edited in the console."

    button(browser, "Delete").click()
    question = wait_for(browser, expected_conditions.alert_is_present(), 10, "the confirmation")
    assert "Delete cluster/cpu-cluster?" in question.text
    question.accept()
    wait_for(browser, lambda b: path_of(b) == "/", 30, "the resources page")
    wait_for(browser, shows("#listing", "No resources yet"), 90, "the cluster gone")
    assert console.request("GET", "/api/v1/resources").json() == []
    refused = [
        e["message"] for e in browser.get_log("browser") if "Security Policy" in e["message"]
    ]
    assert refused == [], "the pages' own scripts broke their policy"


def test_a_second_user_sees_none_of_it(browser: WebDriver, console: RunningServer) -> None:
    park_a_job(console)
    made = console.request("POST", "/api/v1/users", json={"name": "bob"})
    assert made.status_code == 201, made.text

    sign_in(browser, console.url, made.json()["token"])

    assert "No resources yet" in text_of(browser, "#empty")
    nav = text_of(browser, 'nav[aria-label="Main"]')
    assert "Resources" in nav and "Users" not in nav and "Audit" not in nav
    browser.get(console.url + PARKED_PAGE + "?owner=admin")
    refused = alert_text(browser)
    assert "not found" in refused.lower(), refused
    assert "sleep 300" not in browser.page_source
    assert not browser.find_elements(By.ID, "resource")
    for page in ("/jobs", "/admin/users", "/admin/audit"):
        browser.get(console.url + page)
        assert "parked" not in browser.find_element(By.ID, "main").text, page
    assert "only an admin" in alert_text(browser)  # the audit page, refused


def test_a_bad_recipe_shows_the_field_error(browser: WebDriver, console: RunningServer) -> None:
    sign_in(browser, console.url, console.token)
    browser.get(console.url + "/new")
    typo = {"schema_version": 1, "type": "cluster", "name": "typo", "spec": {"n_workerz": 1}}
    type_recipe(browser, json.dumps(typo))

    field = '#problems li[data-field="spec.n_workerz"]'
    problem = wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, field), 30, field)
    assert "did you mean" in problem.text, problem.text

    button(browser, "Apply").click()
    wait_for(browser, alert_text, 30, "the refusal")
    assert path_of(browser) == "/new"
    assert browser.find_element(By.CSS_SELECTOR, field).text
    assert json.loads(browser.find_element(By.ID, "recipe").get_attribute("value") or "") == typo
    assert console.request("GET", "/api/v1/resources").json() == []

    type_recipe(browser, '{\n  "type": "job",\n  "name": oops\n}')
    broken = wait_for(
        browser,
        lambda b: "line 3 column 11" in text_of(b, "#problems"),
        30,
        "the JSON syntax error's place",
    )
    assert broken


@contextmanager
def site_elsewhere(pages: dict[str, str]) -> Iterator[str]:
    """An HTTP server on another port of 127.0.0.1 serving ``pages`` (path → HTML); its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def stop_form(console: RunningServer, csrf: str | None) -> str:
    """A page that at once posts ``stop`` for the parked job to the console."""
    guess = f'<input type="hidden" name="csrf" value="{csrf}">' if csrf is not None else ""
    return f"""<!doctype html><html><body>
<form id="f" method="post" action="{console.url}{PARKED_PAGE}/stop">
  <input type="hidden" name="owner" value="admin">{guess}
</form>
<script>document.getElementById("f").submit()</script>
</body></html>"""


def test_a_page_elsewhere_cannot_act_for_the_user(
    browser: WebDriver, console: RunningServer
) -> None:
    job = park_a_job(console)
    sign_in(browser, console.url, console.token)
    pages = {"/plain": stop_form(console, None), "/guessed": stop_form(console, "0" * 64)}

    with site_elsewhere(pages) as elsewhere:
        for page in pages:
            browser.get(elsewhere + page)
            wait_for(browser, lambda b: path_of(b) == PARKED_PAGE + "/stop", 30, "the post")
            refused = wait_for(browser, alert_text, 30, "the refusal")
            assert "only from its own pages" in refused, (page, refused)
            assert browser.title.startswith("Problem")
            assert console.hub().get(job)["target"] == "running", page

    browser.get(console.url + "/")  # still signed in: the session was not harmed
    assert path_of(browser) == "/"
    assert console.hub().get(job)["status"] == "running"


def test_times_are_shown_in_the_readers_timezone(
    browser: WebDriver, console: RunningServer
) -> None:
    park_a_job(console)
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    sign_in(browser, console.url, console.token)

    def in_tokyo(element: WebElement) -> bool:
        shown = element.text
        at = datetime.fromisoformat(element.get_attribute("datetime") or "")
        tokyo = at.replace(tzinfo=None) + timedelta(hours=9)
        hour = {tokyo.strftime("%H"), tokyo.strftime("%I")}
        return ("GMT+9" in shown or "JST" in shown) and any(
            f"{h}:{tokyo:%M:%S}" in shown for h in hour
        )

    created = '#resources tr[data-resource="job/parked"] time'
    wait_for(browser, lambda b: in_tokyo(b.find_element(By.CSS_SELECTOR, created)), 30, created)

    browser.get(console.url + PARKED_PAGE)
    live = browser.find_element(By.ID, "live")
    wait_for(browser, expected_conditions.staleness_of(live), 30, "a live refresh")
    times = "#live time[datetime]"
    wait_for(
        browser,
        lambda b: all(in_tokyo(t) for t in b.find_elements(By.CSS_SELECTOR, times)),
        10,
        "the refreshed times in Tokyo's time",
    )
    assert browser.find_elements(By.CSS_SELECTOR, times)


REPORT = {
    "schema_version": 1,
    "type": "job",
    "name": "report",
    "spec": {
        "command": 'echo "hello from run $TITAN_JOB_RUN"; echo done >$TITAN_OUTPUT_DIR/result.txt',
        "schedule": "0 3 1 1 *",  # once a year: only the run asked for runs here
        "timezone": "Europe/Berlin",
    },
}


def test_a_jobs_runs_schedule_and_a_runs_logs(browser: WebDriver, console: RunningServer) -> None:
    answer = console.request("PUT", "/api/v1/recipes", json=REPORT)
    assert answer.status_code == 201, answer.text
    sign_in(browser, console.url, console.token)
    browser.get(console.url + "/jobs")
    browser.find_element(By.LINK_TEXT, "runs and schedule").click()
    wait_for(browser, lambda b: path_of(b) == "/resources/job/report", 30, "the job's page")
    assert "0 3 1 1 * in Europe/Berlin" in text_of(browser, "#schedule")
    assert text_of(browser, "#next-due")  # a time, in the reader's timezone
    assert text_of(browser, "#runs-empty").startswith("No runs yet — press Run now")

    button(browser, "Run now").click()  # htmx: the answer beside the button, no new page
    wait_for(browser, shows("#run-now-answer", "Run 1 begun."), 30)
    row = '#run-history tr[data-run="1"]'
    wait_for(browser, shows(row, "succeeded"), 60)  # the runs part refreshes by itself
    assert "manual" in text_of(browser, row)

    browser.find_element(By.LINK_TEXT, "Run 1: logs and outputs").click()
    wait_for(browser, shows("#run-panel #run-logs", "hello from run 1"), 30)
    assert path_of(browser) == "/resources/job/report"  # a panel on the same page
    assert "result.txt" in text_of(browser, "#run-panel #run-outputs")

    button(browser, "Suspend schedule").click()
    wait_for(browser, shows("#suspended", "yes"), 30)
    assert text_of(browser, "#next-due") == "none while suspended"
    assert button(browser, "Resume schedule").is_enabled()


UNLABELLED = """
return [...document.querySelectorAll("input, select, textarea")]
  .filter((e) => e.type !== "hidden")
  .filter((e) => !e.labels.length && !e.getAttribute("aria-label")
                 && !e.getAttribute("aria-labelledby"))
  .map((e) => e.outerHTML);
"""


def test_keyboard_alone_reaches_every_control(browser: WebDriver, console: RunningServer) -> None:
    park_a_job(console)
    sign_in(browser, console.url, console.token)
    browser.get(console.url + "/")
    stop = wait_for(browser, lambda b: b.find_element(By.ID, "stop-admin-job-parked"), 30, "row")
    assert stop.is_enabled()

    def focused() -> WebElement:
        return browser.switch_to.active_element

    keys = ActionChains(browser)
    keys.send_keys(Keys.TAB).perform()
    assert focused().text == "Skip to content"
    for _ in range(60):
        if focused().get_attribute("id") == "stop-admin-job-parked":
            break
        keys.send_keys(Keys.TAB).perform()
    else:
        raise AssertionError("Tab never reached the row's Stop button")
    assert focused().get_attribute("aria-label") == "Stop job/parked"

    for path in ("/", "/new", PARKED_PAGE):
        browser.get(console.url + path)
        wait_for(browser, lambda b: b.find_element(By.ID, "main"), 30, path)
        assert browser.execute_script(UNLABELLED) == [], path
