"""How long until a Titan cluster can compute, against a bare LocalCluster in the same run.

Question: what does the control plane (API, store, reconciler, local backend)
add to getting two Dask workers ready? Both sides start a scheduler and two
worker processes on this machine; the runs alternate so both see the same
load. Prints medians and the Titan/LocalCluster ratio.

Usage: python benchmarks/cluster_startup.py [--repeat 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

from distributed import Client, LocalCluster
from rich.console import Console

from service.client import Hub, ResourceRef
from service.demo import embedded_server


def local_cluster(workers: int) -> tuple[float, float]:
    """Seconds to a ready LocalCluster with ``workers`` processes, and to close it."""
    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with Client(cluster) as client:
        client.wait_for_workers(workers)
        assert client.submit(sum, [1, 2]).result() == 3
        ready = time.perf_counter() - started
    closing = time.perf_counter()
    cluster.close()
    return ready, time.perf_counter() - closing


def titan_cluster(hub: Hub, workers: int, index: int) -> tuple[float, float]:
    """Seconds from ``apply`` to a ready Titan cluster, and from ``delete`` to gone."""
    ref = ResourceRef("cluster", f"bench-{index}")
    recipe = {
        "type": "cluster",
        "name": ref.name,
        "spec": {"n_workers": workers, "worker": {"nthreads": 1}},
    }
    started = time.perf_counter()
    hub.apply(recipe)
    address = hub.wait(ref, {"running"}, interval=0.05)["endpoints"]["scheduler"]
    with Client(address) as client:
        client.wait_for_workers(workers)
        assert client.submit(sum, [1, 2]).result() == 3
        ready = time.perf_counter() - started
    closing = time.perf_counter()
    hub.delete(ref)
    hub.wait_gone(ref)
    return ready, time.perf_counter() - closing


def main() -> None:
    """Run both sides ``--repeat`` times, alternating, and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    results: dict[str, list[tuple[float, float]]] = {"LocalCluster": [], "Titan": []}
    with embedded_server(console) as (url, token):
        hub = Hub(url, token)
        for index in range(args.repeat):
            results["LocalCluster"].append(local_cluster(args.workers))
            results["Titan"].append(titan_cluster(hub, args.workers, index))
    base_ready = statistics.median(r for r, _ in results["LocalCluster"])
    base_stop = statistics.median(s for _, s in results["LocalCluster"])
    console.print(f"{args.workers} workers, {args.repeat} runs each (median seconds)")
    console.print(f"{'':14}{'ready':>8}{'x base':>8}{'teardown':>10}{'x base':>8}")
    for name, runs in results.items():
        ready = statistics.median(r for r, _ in runs)
        stop = statistics.median(s for _, s in runs)
        console.print(
            f"{name:14}{ready:8.2f}{ready / base_ready:8.2f}{stop:10.2f}{stop / base_stop:8.2f}"
        )


if __name__ == "__main__":
    main()
