"""Does the API keep answering while users' clusters run on the same machine?

Applies N one-worker Dask clusters (20 by default) to a real ``titan server``
(SQLite, local backend), waits until they run, and measures
``GET /api/v1/resources`` and ``GET /healthz`` at 1 and 32 clients; then stops
every cluster and measures the same reads again, with the same N resources
listed. The table gives requests/s and p99 under load as a ratio of the idle
figures from the same run (target: within 1.5x). ``--user-cpu-shares 1024``
gives user processes the control plane's own weight, for comparison.

Usage: python benchmarks/api_under_load.py [--clusters 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from api import free_port, load, serve  # the same load generator as api.py


def wait_all(base: str, headers: dict[str, str], status: str, count: int, limit: float) -> float:
    """Seconds until ``count`` resources have ``status``; RuntimeError after ``limit``."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        listed = httpx.get(f"{base}/resources", headers=headers, timeout=60).json()
        if sum(1 for r in listed if r["status"] == status) >= count:
            return time.monotonic() - began
        time.sleep(2)
    raise RuntimeError(f"not all {count} resources were {status} after {limit:.0f}s")


def own_cpu(pid: int, seconds: float = 10) -> float:
    """The share of one core the server itself uses while nobody calls it."""
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(process.cpu_times()[:2]) - before) / seconds


def measure(
    urls: dict[str, str], headers: dict[str, str], concurrency: list[int], seconds: float
) -> dict[tuple[str, int], tuple[float, float, float]]:
    return {
        (name, clients): asyncio.run(load("GET", url, clients, seconds, headers=headers))
        for name, url in urls.items()
        for clients in concurrency
    }


def main() -> None:
    """Start the server, load it with clusters, measure, unload, measure, print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--user-cpu-shares", type=int, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="titan-load-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}
    env |= {"TITAN_DATA_DIR": str(work / "data"), "TITAN_PORT": str(port)}
    if args.user_cpu_shares:
        env["TITAN_USER_CPU_SHARES"] = str(args.user_cpu_shares)
    server = serve(
        [sys.executable, "-m", "service.cli", "server"], env, f"http://127.0.0.1:{port}/healthz"
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        headers = {"Authorization": f"Bearer {(work / 'data' / 'admin-token').read_text().strip()}"}
        urls = {
            "list resources": f"{base}/resources",
            "healthz": f"http://127.0.0.1:{port}/healthz",
        }
        for index in range(args.clusters):
            recipe = {"type": "cluster", "name": f"c{index}", "spec": {"n_workers": 1}}
            httpx.put(f"{base}/recipes", json=recipe, headers=headers, timeout=60)
        ready = wait_all(base, headers, "running", args.clusters, 900)
        time.sleep(10)  # let the starts settle: what is measured is idle clusters running
        loaded_cpu = own_cpu(server.pid)
        loaded = measure(urls, headers, args.concurrency, args.seconds)
        for index in range(args.clusters):
            httpx.post(f"{base}/resources/cluster/c{index}/stop", headers=headers, timeout=60)
        wait_all(base, headers, "stopped", args.clusters, 300)
        idle_cpu = own_cpu(server.pid)
        idle = measure(urls, headers, args.concurrency, args.seconds)
        table = Table(
            "read", "clients", "idle req/s", "loaded req/s", "idle p99 ms", "loaded p99 ms",
            "req/s ratio", "p99 ratio",
        )  # fmt: skip
        for (name, clients), (rate, _p50, p99) in idle.items():
            loaded_rate, _lp50, loaded_p99 = loaded[(name, clients)]
            table.add_row(
                name, str(clients), f"{rate:.0f}", f"{loaded_rate:.0f}", f"{p99:.1f}",
                f"{loaded_p99:.1f}", f"{rate / loaded_rate:.2f}x", f"{loaded_p99 / p99:.2f}x",
            )  # fmt: skip
        shares = args.user_cpu_shares or "default"
        Console(width=140).print(
            f"{args.clusters} one-worker clusters running after {ready:.0f}s "
            f"(user CPU shares: {shares}); ratios are loaded vs idle, same run; the server's "
            f"own CPU with nobody calling it: {loaded_cpu:.0%} of a core loaded, "
            f"{idle_cpu:.0%} idle"
        )
        Console(width=140).print(table)
    finally:  # every process gone before the server: a stopped server leaves them running
        for index in range(args.clusters):
            httpx.delete(f"{base}/resources/cluster/c{index}", headers=headers, timeout=60)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if not httpx.get(f"{base}/resources", headers=headers, timeout=60).json():
                break
            time.sleep(1)
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
