"""How long from asking for a Dask cluster to computing on it, against bare Dask.

For n = 1, 2, 4 workers, the median over --repeat runs (alternating, so all
three see the same load) of the time until ``Client.wait_for_workers(n)``:

- Titan: ``apply`` a cluster recipe to an embedded ``titan server`` (SQLite,
  local backend), wait for it to run, connect a Client;
- baseline (a): ``LocalCluster(n_workers=n, processes=True)`` in this process;
- baseline (b): a bare ``dask scheduler`` and n ``dask worker`` subprocesses
  started by this script at the same moment.

Then scale 2 -> 4: Titan applies ``n_workers: 4``; the bare baseline starts two
more ``dask worker`` subprocesses. Prints a table; the issue's target is
Titan <= 1.25x baseline (b).

With ``--backend docker`` it measures the docker backend instead (see
``provision_docker.py``): a workspace with a 2-worker cluster against bare
``docker run`` of the same containers.

Usage: python benchmarks/provision.py [--repeat 5] [--sizes 1 2 4] [--backend local|docker]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from distributed import Client, LocalCluster
from distributed.security import Security
from rich.console import Console
from rich.table import Table

from service.client import Hub, ResourceRef
from service.demo import embedded_server

Started = tuple[str, Callable[[], None], Security | None]


def timed(start: Callable[[], Started], n: int) -> float:
    """Seconds from calling ``start`` until a Client sees ``n`` workers; then tear down."""
    began = time.perf_counter()
    address, teardown, security = start()
    try:
        with Client(address, security=security, timeout="60s") as client:
            client.wait_for_workers(n, timeout=120)
            return time.perf_counter() - began
    finally:
        teardown()


def local_cluster(n: int) -> Started:
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    return cluster.scheduler_address, cluster.close, None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dask_worker(address: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bare_dask(n: int, processes: list[subprocess.Popen[bytes]]) -> str:
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    processes.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    processes.extend(dask_worker(address) for _ in range(n))
    return address


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def bare(n: int) -> Started:
    processes: list[subprocess.Popen[bytes]] = []
    return bare_dask(n, processes), lambda: stop_all(processes), None


def titan(hub: Hub, n: int, index: int) -> Started:
    ref = ResourceRef("cluster", f"bench-{n}-{index}")
    recipe = {
        "type": "cluster",
        "name": ref.name,
        "spec": {"n_workers": n, "worker": {"nthreads": 1}},
    }
    generation = hub.apply(recipe)["resource"]["generation"]
    resource = hub.wait(ref, {"running"}, interval=0.05, generation=generation)

    def teardown() -> None:
        hub.delete(ref)
        hub.wait_gone(ref)

    return resource["endpoints"]["scheduler"], teardown, hub.cluster_security(ref)


def titan_scale(hub: Hub, index: int) -> float:
    ref = ResourceRef("cluster", f"scale-{index}")
    recipe = {"type": "cluster", "name": ref.name, "spec": {"n_workers": 2}}
    hub.apply(recipe)
    address = hub.wait(ref, {"running"}, generation=1)["endpoints"]["scheduler"]
    try:
        with Client(address, security=hub.cluster_security(ref)) as client:
            client.wait_for_workers(2)
            began = time.perf_counter()
            hub.apply({**recipe, "spec": {"n_workers": 4}})
            client.wait_for_workers(4, timeout=120)
            return time.perf_counter() - began
    finally:
        hub.delete(ref)
        hub.wait_gone(ref)


def bare_scale() -> float:
    processes: list[subprocess.Popen[bytes]] = []
    address = bare_dask(2, processes)
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2)
            began = time.perf_counter()
            processes.extend(dask_worker(address) for _ in range(2))
            client.wait_for_workers(4, timeout=120)
            return time.perf_counter() - began
    finally:
        stop_all(processes)


def main() -> None:
    """Run every measurement --repeat times and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backend", choices=["local", "docker"], default="local")
    args = parser.parse_args()
    if args.backend == "docker":
        from provision_docker import main_docker

        main_docker(args.repeat)
        return
    console = Console(width=120)
    rows = []
    with embedded_server(console) as (url, token):
        hub = Hub(url, token)
        for n in args.sizes:
            runs: dict[str, list[float]] = {"titan": [], "local": [], "bare": []}
            for index in range(args.repeat):
                runs["bare"].append(timed(lambda n=n: bare(n), n))
                runs["local"].append(timed(lambda n=n: local_cluster(n), n))
                runs["titan"].append(timed(lambda n=n, i=index: titan(hub, n, i), n))
            rows.append(
                (f"start {n} worker(s)", {k: statistics.median(v) for k, v in runs.items()})
            )
        scale = {"titan": [], "bare": []}
        for index in range(args.repeat):
            scale["bare"].append(bare_scale())
            scale["titan"].append(titan_scale(hub, index))
        rows.append(("scale 2 -> 4", {k: statistics.median(v) for k, v in scale.items()}))
    table = Table(
        "measure (median s)",
        "Titan",
        "LocalCluster (a)",
        "bare dask (b)",
        "Titan / (a)",
        "Titan / (b)",
    )
    for name, medians in rows:
        local = medians.get("local")
        table.add_row(
            name,
            f"{medians['titan']:.2f}",
            f"{local:.2f}" if local else "-",
            f"{medians['bare']:.2f}",
            f"{medians['titan'] / local:.2f}" if local else "-",
            f"{medians['titan'] / medians['bare']:.2f}",
        )
    console.print(f"{args.repeat} runs each, alternating")
    console.print(table)


if __name__ == "__main__":
    main()
