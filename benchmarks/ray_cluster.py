"""How long from asking for a Ray cluster to computing on it, against bare ``ray start``.

A head and 2 worker nodes (1 CPU each), the median over --repeat runs,
alternating so both see the same load, of the time until a driver connected
through Ray Client sees 3 alive nodes and has run a task:

- Titan: ``apply`` a cluster recipe with ``"engine": "ray"`` to an embedded
  ``titan server`` (SQLite, local backend), wait for it to run, connect;
- bare: the same ``ray start --block`` command lines (the Ray engine's own,
  with the same pinned ports, sizes and token), started by this script the
  same way (head first, then each worker once the one before joined).

Prints a table; the issue's target is Titan <= 1.25x bare.

Usage: python benchmarks/ray_cluster.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from bare_ray import bare_ray_cluster, driver_environment
from rich.console import Console
from rich.table import Table

from service.client import Hub
from service.demo import embedded_server

console = Console()
SPEC = {"engine": "ray", "n_workers": 2, "worker": {"nthreads": 1, "memory": "1GiB"}}
CHECK = """
import ray
ray.init()
assert len([n for n in ray.nodes() if n["Alive"]]) == 3
assert ray.get(ray.remote(lambda: 1).remote()) == 1
"""


def connect(address: str, token: str) -> None:
    """A driver that sees the whole cluster and runs a task (fails otherwise)."""
    env = driver_environment(address, token)
    subprocess.run([sys.executable, "-c", CHECK], env=env, check=True, capture_output=True)


def titan(hub: Hub, index: int) -> float:
    """Seconds from apply to a driver computing on the Titan cluster; then delete it."""
    name = f"ray-bench-{index}"
    began = time.perf_counter()
    hub.apply({"type": "cluster", "name": name, "spec": SPEC})
    running = hub.wait(f"cluster/{name}", {"running"}, timeout=600)
    connect(running["endpoints"]["ray"], hub.credentials(f"cluster/{name}")["ray_token"])
    seconds = time.perf_counter() - began
    hub.delete(f"cluster/{name}")
    hub.wait_gone(f"cluster/{name}", timeout=300)
    return seconds


def bare() -> float:
    """Seconds from the first ``ray start`` to a driver computing; then stop the nodes."""
    began = time.perf_counter()
    with bare_ray_cluster(SPEC) as (address, token):
        connect(address, token)
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"titan": [], "bare": []}
    with embedded_server(console) as (url, token):
        hub = Hub(url, token)
        for index in range(args.repeat):
            times["bare"].append(bare())
            times["titan"].append(titan(hub, index))
            console.print(
                f"run {index}: bare {times['bare'][-1]:.1f}s, titan {times['titan'][-1]:.1f}s"
            )
    table = Table(title="Ray cluster (head + 2 workers) ready and computing, median seconds")
    for column in ("bare ray start", "Titan", "ratio"):
        table.add_column(column)
    titan_s, bare_s = statistics.median(times["titan"]), statistics.median(times["bare"])
    table.add_row(f"{bare_s:.1f}", f"{titan_s:.1f}", f"{titan_s / bare_s:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
