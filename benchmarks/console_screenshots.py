"""Screenshots of the web console's pages with a running cluster, to look at them by eye.

Starts an embedded ``titan server`` (its own temporary data directory, SQLite, the
local backend), applies recipes/cpu-cluster.json through the API, and a small job on a
schedule that it runs once, waits for the cluster to run and for its telemetry to
arrive, signs in with the admin token in headless Chromium and saves full-page PNGs
into DIR: the sign-in page, the resource list (/), a new resource (/new), the
cluster's page, /nodes, /usage, /tokens, /admin/users, the job's page with its
schedule and runs, its run's page with the logs and outputs, and a deployment's page
(two replicas of tests/integration/deploy_app.py, rolled out to a second version and
called through its front door). Then it deletes them and stops the server, also after
a failure. ``--only PAGE...`` saves only those pages, running only what they show.

A page that does not show the console's navigation (an error page, say) is still
saved, and named at the end; the exit status is then 1.

Needs Chromium and chromedriver (apt-get install chromium chromium-driver) and
selenium (the ``test`` extra).

Usage: python benchmarks/console_screenshots.py [--out DIR] [--settle SECONDS] [--only PAGE...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.client import Hub, ResourceRef
from service.demo import embedded_server
from tests.browser.chromium import INSTALL, WINDOW, missing, start_chromium
from tests.browser.pages import sign_in, wait_for

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "cpu-cluster.json"
CLUSTER_NAME = json.loads(RECIPE.read_text())["name"]
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
DEPLOYMENT_NAME = "hello-web"
REPLICA_APP = ROOT / "tests" / "integration" / "deploy_app.py"  # a stdlib HTTP app


def deployment(version: str) -> dict[str, Any]:
    """The example deployment's recipe at ``version``: two replicas of a tiny app."""
    return {
        "type": "deployment",
        "name": DEPLOYMENT_NAME,
        "spec": {
            "command": f'exec "$TITAN_PYTHON" {REPLICA_APP} {version}',
            "scale": 2,
            "routes": [
                {"path": "/", "visibility": "owner"},
                {"path": "/healthz", "visibility": "public"},
            ],
            "health_check": {"path": "/healthz", "interval": 1},
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


# (page, path, element that shows it rendered, what it needs running): the pages in
# order, saved as NN-page.png from 02 on (01 is the sign-in page).
PAGES = (
    ("resources", "/", NAV, ""),
    ("new", "/new", NAV, ""),
    ("resource", f"/resources/cluster/{CLUSTER_NAME}", "#charts .uplot", "cluster"),
    ("nodes", "/nodes", NAV, ""),
    ("usage", "/usage", NAV, ""),
    ("tokens", "/tokens", NAV, ""),
    ("admin-users", "/admin/users", NAV, ""),
    ("job-runs", f"/resources/job/{JOB_NAME}", "#run-history", "job"),
    ("job-run", f"/resources/job/{JOB_NAME}/runs/1", "#run-logs", "job"),
    ("deployment", f"/resources/deployment/{DEPLOYMENT_NAME}", "#replicas", "deployment"),
)


def take_screenshots(
    url: str, token: str, out: Path, settle: float, console: Console, only: list[str]
) -> list[str]:
    """Run what the chosen pages (``only``, or all) show on the server at ``url``, save
    the pages into ``out`` and delete what ran; the names of the pages that did not
    render."""
    hub = Hub(url, token)
    chosen = [page for page in PAGES if not only or page[0] in only]
    needs = {page[3] for page in chosen}
    made: list[ResourceRef] = []
    try:
        if "cluster" in needs:
            made.append(ref(hub.apply(json.loads(RECIPE.read_text()))))
            console.print(f"applied {RECIPE.name} as {made[-1]}; waiting for it to run")
        if "job" in needs:
            made.append(ref(hub.apply(JOB)))
            run = hub.run(made[-1])["number"]
            while hub.job_run(made[-1], run)["finished_at"] is None:
                time.sleep(1)
        if "deployment" in needs:
            made.append(serve_two_versions(hub, url, token, console))
        if "cluster" in needs:
            hub.wait(made[0], {"running"}, timeout=300)
        console.print(f"running; {settle:.0f} s for telemetry and logs to arrive")
        time.sleep(settle)
        browser = start_chromium()
        try:
            return save_pages(browser, url, token, chosen, out, console, not only)
        finally:
            browser.quit()
    finally:
        for resource in made:
            hub.delete(resource)
            hub.wait_gone(resource, timeout=120)
            console.print(f"deleted {resource}")


def ref(applied: dict[str, Any]) -> ResourceRef:
    """The resource an apply answered."""
    resource = applied["resource"]
    return ResourceRef(resource["type"], resource["name"], resource["owner"])


def serve_two_versions(hub: Hub, url: str, token: str, console: Console) -> ResourceRef:
    """The example deployment at its second version (so it has one to roll back to),
    with some requests through its front door for its charts."""
    web = ref(hub.apply(deployment("v1")))
    hub.wait(web, {"running"}, timeout=120)
    hub.apply(deployment("v2"))
    hub.wait(web, {"running"}, generation=2, timeout=120)
    path = f"/deploy/{web.owner}/{DEPLOYMENT_NAME}/predict"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(60):
            client.get(path)
            time.sleep(0.1)
    console.print(f"{web} rolled out to v2 and called")
    return web


def save_pages(
    browser: WebDriver,
    url: str,
    token: str,
    pages: list[tuple[str, str, str, str]],
    out: Path,
    console: Console,
    with_sign_in: bool,
) -> list[str]:
    """Save the sign-in page (if ``with_sign_in``), sign in with ``token`` and save
    ``pages`` into ``out``; the names of those that did not render."""
    failed = []
    if with_sign_in and not save_page(browser, url + "/sign-in", out / "01-sign-in.png", "#token"):
        failed.append("sign-in")
    sign_in(browser, url, token)
    for page, path, ready, _needs in pages:
        number = [p[0] for p in PAGES].index(page) + 2
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
    names = ", ".join(page[0] for page in PAGES)
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="PAGE", help=f"save only these pages: {names}"
    )
    args = parser.parse_args()
    console = Console()
    absent = missing()
    if absent:
        console.print(f"no {' or '.join(absent)}: {INSTALL}")
        raise SystemExit(2)
    args.out.mkdir(parents=True, exist_ok=True)
    # Each process pushes its samples every second (default 5 s), and the front door its
    # counts every 2 s (default 10 s), so the charts fill in time.
    os.environ.setdefault("TITAN_TELEMETRY_PUSH_SECONDS", "1")
    os.environ.setdefault("TITAN_DEPLOYMENT_METRICS_SECONDS", "2")
    with embedded_server(console) as (url, token):
        failed = take_screenshots(url, token, args.out, args.settle, console, args.only)
    if failed:
        console.print(f"these pages did not render the console: {', '.join(failed)}")
        raise SystemExit(1)
    console.print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
