"""How fast the API answers, against a bare FastAPI endpoint served the same way.

Measures requests/s and p50/p99 latency for ``GET /api/v1/resources`` (with 20
resources stored) and a no-op ``PUT /api/v1/recipes`` (an unchanged recipe),
at 1 and 32 concurrent clients, against ``GET /bare`` of a one-route FastAPI
app under the same uvicorn settings, in the same run. Each server runs in its
own subprocess; the load comes from asyncio httpx clients in this process.

Usage: python benchmarks/api.py [--seconds 5] [--concurrency 1 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

BARE_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/bare")
def bare() -> list[dict[str, str]]:
    return [{"name": f"r{i}", "status": "running"} for i in range(20)]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        env,
        f"http://127.0.0.1:{bare_port}/bare",
    )
    try:
        token = (work / "data" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{titan_port}/api/v1"
        noop = {"type": "job", "name": "noop", "spec": {"command": "true"}}
        for index in range(19):  # 20 resources to list
            recipe = {"type": "job", "name": f"j{index}", "spec": {"command": "true"}}
            httpx.put(f"{base}/recipes", json=recipe, headers=headers, timeout=30)
        httpx.put(f"{base}/recipes", json=noop, headers=headers, timeout=30)
        cases = [
            ("bare FastAPI GET", "GET", f"http://127.0.0.1:{bare_port}/bare", {}),
            ("list resources", "GET", f"{base}/resources", {"headers": headers}),
            ("no-op apply", "PUT", f"{base}/recipes", {"headers": headers, "json": noop}),
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
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
