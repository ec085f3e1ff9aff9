"""What the web console's live updates cost the server, against the API's own listing.

A console page refreshes itself by polling: the resources page asks for its table
every 3 s (``GET /resources/rows``), a resource page for its live part every 3 s
(``GET /resources/job/NAME/live``) and for new log lines every 2 s (the logs API with
an offset). This measures requests/s and p50/p99 latency of each as one of 20 users
with 1,000 resources stored (50 each), at 1 and 8 concurrent clients, against
``GET /api/v1/resources`` (the same user's listing) in the same run, and turns the
rate into how many open pages one server process keeps live (rate times refresh period).

Usage: python benchmarks/console.py [--seconds 5] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import httpx
from api import EACH, load, populate, titan_server
from rich.console import Console
from rich.table import Table


def main() -> None:
    """Start a server, sign a user in, measure each refresh, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="titan-console-bench-"))
    titan, url, _env = titan_server(work)
    try:
        admin = (work / "data" / "admin-token").read_text().strip()
        tokens = populate(f"{url}/api/v1", admin, work / "data")
        signed = httpx.post(
            f"{url}/sign-in", data={"token": tokens[0]}, headers={"Origin": url}, timeout=30
        )
        assert signed.status_code == 303, signed.text
        cookie = {"Cookie": f"titan_session={signed.cookies['titan_session']}"}
        bearer = {"Authorization": f"Bearer {tokens[0]}"}
        rows = httpx.get(f"{url}/resources/rows", headers=cookie, timeout=30)
        assert rows.text.count("data-resource=") == EACH, rows.text[:300]
        job = f"{url}/resources/job/job-000"
        cases = [
            ("API: list own resources (baseline)", f"{url}/api/v1/resources", bearer, 0),
            ("resources page: table refresh", f"{url}/resources/rows", cookie, 3),
            ("resource page: live part", f"{job}/live", cookie, 3),
            (
                "resource page: new log lines",
                f"{url}/api/v1/resources/job/job-000/logs?offset=0",
                cookie,
                2,
            ),
        ]
        table = Table(
            "case", "clients", "req/s", "p50 ms", "p99 ms", "vs baseline", "open pages kept live"
        )
        for clients in args.concurrency:
            baseline = 0.0
            for name, target, headers, period in cases:
                rate, p50, p99 = asyncio.run(
                    load("GET", target, clients, args.seconds, headers=headers)
                )
                baseline = baseline or rate
                pages = f"{rate * period:.0f}" if period else "—"
                table.add_row(
                    name,
                    str(clients),
                    f"{rate:.0f}",
                    f"{p50:.1f}",
                    f"{p99:.1f}",
                    f"{rate / baseline:.2f}",
                    pages,
                )
        Console(width=140).print(table)
    finally:
        titan.terminate()
        titan.wait(timeout=30)


if __name__ == "__main__":
    main()
