"""How fast the API answers, against a bare FastAPI endpoint served the same way.

Measures requests/s and p50/p99 latency for ``GET /api/v1/resources`` as one of
20 users with 1,000 resources stored (50 each; the user sees their own 50), and a
no-op ``PUT /api/v1/recipes`` (an unchanged recipe), at 1 and 32 concurrent
clients, against ``GET /bare`` of a one-route FastAPI app that answers the very
same JSON (the page Titan returned, read from a file at start), under the same
uvicorn settings, in the same run. Each server runs in its own subprocess; the
load comes from asyncio httpx clients in this process.

Usage: python benchmarks/api.py [--seconds 5] [--concurrency 1 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

BARE_APP = """
import json, os
from typing import Any
from fastapi import FastAPI
app = FastAPI()
PAGE = json.loads(open(os.environ["BARE_PAGE"]).read())

@app.get("/bare")
def bare() -> list[dict[str, Any]]:
    return PAGE
"""
USERS = 20
EACH = 50  # resources per user: 1,000 stored


def store_resources(data_dir: Path, users: list[str]) -> None:
    """``EACH`` stopped jobs per user, written straight to the server's store."""
    from service.core.control.state import Status, Target
    from service.database.db import make_engine, session_factory
    from service.database.models import Resource

    engine = make_engine(f"sqlite:///{data_dir / 'titan.db'}")
    with session_factory(engine).begin() as session:
        for owner in users:
            for i in range(EACH):
                name = f"job-{i:03d}"
                recipe = {"type": "job", "name": name, "owner": owner, "spec": {"command": "true"}}
                session.add(
                    Resource(
                        id=uuid.uuid4().hex,
                        owner=owner,
                        type="job",
                        name=name,
                        recipe=recipe,
                        target=Target.STOPPED,
                        status=Status.STOPPED,
                    )
                )
    engine.dispose()


def wait_settled(data_dir: Path, timeout: float = 300) -> float:
    """Seconds until the reconciler has looked at every stored resource once (the steady
    state a long-running server is in), read from its store."""
    began = time.monotonic()
    with sqlite3.connect(data_dir / "titan.db") as db:
        while time.monotonic() - began < timeout:
            query = "SELECT count(*) FROM resources WHERE observed_generation < generation"
            if db.execute(query).fetchone()[0] == 0:
                return time.monotonic() - began
            time.sleep(0.5)
    raise RuntimeError("the reconciler did not settle the stored resources")


def populate(base: str, admin: str, data_dir: Path) -> list[str]:
    """``USERS`` users with ``EACH`` stopped jobs each, settled by the reconciler, on the
    server whose API is ``base`` and store is in ``data_dir``; the users' tokens."""
    tokens = []
    for index in range(USERS):
        made = httpx.post(
            f"{base}/users",
            json={"name": f"user{index:02d}"},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        tokens.append(made.json()["token"])
    store_resources(data_dir, [f"user{index:02d}" for index in range(USERS)])
    settled = wait_settled(data_dir)
    print(f"the reconciler settled {USERS * EACH} stored resources in {settled:.1f} s")
    return tokens


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def titan_server(work: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """``titan server`` on a free loopback port, its data in ``work``/data, none of this
    shell's TITAN_ settings: the process, its URL (once it answers) and that environment
    without the server's own settings (for other processes the benchmark starts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    titan_env = {**env, "TITAN_DATA_DIR": str(work / "data"), "TITAN_PORT": str(port)}
    titan = serve([sys.executable, "-m", "service.cli", "server"], titan_env, url + "/healthz")
    return titan, url, env


def serve(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not answer at {url}")


async def load(
    method: str, url: str, clients: int, seconds: float, **kw: Any
) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) of ``clients`` loops for ``seconds``."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                response = await http.request(method, url, **kw)
                latencies.append(time.perf_counter() - began)
                assert response.status_code < 400, response.text

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.monotonic() - started
    if len(latencies) < 2:  # a starved server: fewer than two answers in the whole window
        worst = max(latencies, default=elapsed) * 1000
        return len(latencies) / elapsed, worst, worst
    quantiles = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, quantiles[49] * 1000, quantiles[98] * 1000


def main() -> None:
    """Start both servers, measure each case, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="titan-api-bench-"))
    (work / "bare_app.py").write_text(BARE_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}
    titan_port, bare_port = free_port(), free_port()
    titan_env = {**env, "TITAN_DATA_DIR": str(work / "data"), "TITAN_PORT": str(titan_port)}
    titan = serve(
        [sys.executable, "-m", "service.cli", "server"],
        titan_env,
        f"http://127.0.0.1:{titan_port}/healthz",
    )
    bare: subprocess.Popen[bytes] | None = None
    try:
        admin = (work / "data" / "admin-token").read_text().strip()
        base = f"http://127.0.0.1:{titan_port}/api/v1"
        tokens = populate(base, admin, work / "data")
        headers = {"Authorization": f"Bearer {tokens[0]}"}
        page = httpx.get(f"{base}/resources", headers=headers, timeout=30)
        assert len(page.json()) == EACH, page.text[:200]
        (work / "page.json").write_bytes(page.content)
        bare = serve(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--app-dir",
                str(work),
            ],
            {**env, "BARE_PAGE": str(work / "page.json")},
            f"http://127.0.0.1:{bare_port}/bare",
        )
        # The no-op apply is the admin's: users' processes need OS accounts (not set here).
        as_admin = {"Authorization": f"Bearer {admin}"}
        noop = {"type": "job", "name": "noop", "spec": {"command": "true"}}
        httpx.put(f"{base}/recipes", json=noop, headers=as_admin, timeout=30)
        cases = [
            ("bare FastAPI GET", "GET", f"http://127.0.0.1:{bare_port}/bare", {}),
            ("list own resources (50 of 1,000)", "GET", f"{base}/resources", {"headers": headers}),
            ("no-op apply", "PUT", f"{base}/recipes", {"headers": as_admin, "json": noop}),
        ]
        table = Table("case", "clients", "req/s", "p50 ms", "p99 ms", "req/s vs bare")
        for clients in args.concurrency:
            bare_rate = 0.0
            for name, method, url, kw in cases:
                rate, p50, p99 = asyncio.run(load(method, url, clients, args.seconds, **kw))
                bare_rate = bare_rate or rate
                table.add_row(
                    name,
                    str(clients),
                    f"{rate:.0f}",
                    f"{p50:.1f}",
                    f"{p99:.1f}",
                    f"{rate / bare_rate:.2f}",
                )
        Console(width=120).print(table)
    finally:
        for process in (titan, bare):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
