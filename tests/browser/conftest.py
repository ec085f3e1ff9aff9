"""Headless Chromium (through chromedriver) against a real Titan server, for the web console.

Every test here is marked ``slow``. Where Chromium or chromedriver is missing these
tests skip (``apt-get install chromium chromium-driver``); with ``CI=true`` (as CI
runs them) a missing browser is a failure instead. A failed test leaves a screenshot
and the page's HTML in its ``tmp_path`` and prints where, with the browser's console.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException

from tests.browser.chromium import INSTALL, missing, start_chromium
from tests.integration.conftest import (  # noqa: F401 - a real server
    RunningServer,
    ServerFactory,
    start_server,
)

HERE = Path(__file__).parent
CALL_FAILED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``slow`` (each starts a server and a browser)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed, for the browser fixture's teardown."""
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium for one test (no cookies, storage or cache from another),
    quit after it with all its processes. Skips where Chromium is missing, except in CI.

    A new browser per test (about 1 s) rather than one per session: the leak check in
    tests/conftest.py counts the renderer processes a shared browser starts during a
    test as that test's leftovers.
    """
    absent = missing()
    if absent:
        message = f"no {' or '.join(absent)}: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the browser tests: {message}")
        pytest.skip(message)
    driver = start_chromium()
    try:
        yield driver
        if request.node.stash.get(CALL_FAILED, False):
            _keep_evidence(driver, tmp_path)
    finally:
        driver.quit()


def _keep_evidence(driver: webdriver.Chrome, folder: Path) -> None:
    """Save what the browser showed when a test failed, and say where."""
    try:
        driver.save_screenshot(str(folder / "page.png"))
        (folder / "page.html").write_text(driver.page_source)
        logged = driver.get_log("browser")
    except WebDriverException as exc:  # the browser itself may be what failed
        print(f"the browser could not show its page: {exc.msg}")
        return
    console = "\n".join(f"  {e['level']} {e['message']}" for e in logged)
    print(f"browser at {driver.current_url}; screenshot and HTML in {folder}")
    print(f"browser console:\n{console or '  (empty)'}")


@pytest.fixture
def console(start_server: ServerFactory) -> RunningServer:  # noqa: F811
    """A real server (local backend, SQLite) whose web console the browser visits at
    ``console.url``; ``console.token`` is the admin's token."""
    return start_server()
