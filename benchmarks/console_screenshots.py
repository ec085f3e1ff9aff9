"""Screenshots of the web console's pages with a running cluster, to look at them by eye.

Starts an embedded ``titan server`` (its own temporary data directory, SQLite, the
local backend), applies recipes/cpu-cluster.json through the API, and a small job on a
schedule that it runs once, waits for the cluster to run and for its telemetry to
arrive, signs in with the admin token in headless Chromium and saves full-page PNGs
into DIR: the sign-in page, the resource list (/), a new resource (/new), the
cluster's page, /nodes, /usage, /tokens, /admin/users, the job's page with its
schedule and runs, and its run's page with the logs and outputs. Then it deletes both
and stops the server, also after a failure.

A page that does not show the console's navigation (an error page, say) is still
saved, and named at the end; the exit status is then 1.

Needs Chromium and chromedriver (apt-get install chromium chromium-driver) and
selenium (the ``test`` extra).

Usage: python benchmarks/console_screenshots.py [--out DIR] [--settle SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.client import Hub, ResourceRef
from service.demo import embedded_server
from tests.browser.chromium import INSTALL, WINDOW, missing, start_chromium
from tests.browser.pages import sign_in, wait_for

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "cpu-cluster.json"
NAV = 'nav[aria-label="Main"]'
JOB_NAME = "nightly-report"
JOB: dict[str, Any] = {
    "type": "job",
    "name": JOB_NAME,
    "spec": {
        "command": 'echo "report for $(date -u +%F)"; echo ok > "$TITAN_OUTPUT_DIR/report.txt"',
        "schedule": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "retries": 2,
        "timeout": "1h",
    },
}


def save_page(browser: WebDriver, url: str, png: Path, ready: str = NAV) -> bool:
    """Open ``url``, wait (up to 30 s) for an element ``ready`` selects, and save the
    whole page, however long, as ``png``. False if ``ready`` never appeared."""
    browser.get(url)
    try:
        wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ready), 30, ready)
        shown = True
    except AssertionError:
        shown = False
    # The window is taller than the page's viewport by the browser's own frame.
    page, frame = browser.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    browser.set_window_size(WINDOW[0], max(WINDOW[1], int(page) + int(frame)))
    try:
        browser.save_screenshot(str(png))
    finally:
        browser.set_window_size(*WINDOW)
    return shown


def take_screenshots(url: str, token: str, out: Path, settle: float, console: Console) -> list[str]:
    """Apply the example cluster on the server at ``url``, save the pages into ``out``
    and delete the cluster; the names of the pages that did not render."""
    hub = Hub(url, token)
    recipe = json.loads(RECIPE.read_text())
    applied = hub.apply(recipe)
    kind, name = recipe["type"], recipe["name"]
    cluster = ResourceRef(kind, name, applied["resource"]["owner"])
    job = ResourceRef("job", JOB_NAME, hub.apply(JOB)["resource"]["owner"])
    console.print(f"applied {RECIPE.name} as {cluster}; waiting for it to run")
    try:
        run = hub.run(job)["number"]
        hub.wait(cluster, {"running"}, timeout=300)
        while hub.job_run(job, run)["finished_at"] is None:
            time.sleep(1)
        console.print(f"running; {settle:.0f} s for telemetry and logs to arrive")
        time.sleep(settle)
        browser = start_chromium()
        try:
            return save_pages(browser, url, token, f"/resources/{kind}/{name}", out, console)
        finally:
            browser.quit()
    finally:
        for made in (cluster, job):
            hub.delete(made)
            hub.wait_gone(made, timeout=120)
            console.print(f"deleted {made}")


def save_pages(
    browser: WebDriver, url: str, token: str, resource: str, out: Path, console: Console
) -> list[str]:
    """Save the sign-in page, sign in with ``token`` and save every other page (the
    resource's page at ``resource``) into ``out``; the names of those that did not render."""
    pages = [
        ("resources", "/", NAV),
        ("new", "/new", NAV),
        ("resource", resource, "#charts .uplot"),
        ("nodes", "/nodes", NAV),
        ("usage", "/usage", NAV),
        ("tokens", "/tokens", NAV),
        ("admin-users", "/admin/users", NAV),
        ("job-runs", f"/resources/job/{JOB_NAME}", "#run-history"),
        ("job-run", f"/resources/job/{JOB_NAME}/runs/1", "#run-logs"),
    ]
    failed = []
    if not save_page(browser, url + "/sign-in", out / "01-sign-in.png", "#token"):
        failed.append("sign-in")
    sign_in(browser, url, token)
    for number, (page, path, ready) in enumerate(pages, start=2):
        png = out / f"{number:02d}-{page}.png"
        if not save_page(browser, url + path, png, ready):
            failed.append(page)
        console.print(f"saved {png}")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screenshots")
    parser.add_argument(
        "--settle", type=float, default=15, help="seconds between running and the screenshots"
    )
    args = parser.parse_args()
    console = Console()
    absent = missing()
    if absent:
        console.print(f"no {' or '.join(absent)}: {INSTALL}")
        raise SystemExit(2)
    args.out.mkdir(parents=True, exist_ok=True)
    # Each process pushes its samples every second (default 5 s), so the charts fill in time.
    os.environ.setdefault("TITAN_TELEMETRY_PUSH_SECONDS", "1")
    with embedded_server(console) as (url, token):
        failed = take_screenshots(url, token, args.out, args.settle, console)
    if failed:
        console.print(f"these pages did not render the console: {', '.join(failed)}")
        raise SystemExit(1)
    console.print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
