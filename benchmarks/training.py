"""Training overhead: the same xgboost.dask training through a Titan cluster and a bare one.

Starts, side by side, a Titan cluster (embedded ``titan server``, local
backend: scheduler and workers are Titan's processes, each with its
telemetry sampler) and a bare ``LocalCluster`` of the same shape (2 workers,
1 thread each, processes). Then trains the same synthetic regression on
each, alternating, --repeat times, and compares the median training time
(``DaskQuantileDMatrix`` + ``train``; data generated and persisted first).
The issue's target: Titan <= 1.05x bare.

Usage: python benchmarks/training.py [--rows 500000] [--rounds 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics

from distributed import Client, LocalCluster
from rich.console import Console
from rich.table import Table

from service.client import Hub
from service.demo import embedded_server
from workers.training.xgboost_train import train_regression

console = Console()
WORKERS = 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"titan": [], "bare": []}
    with embedded_server(console) as (url, token):
        hub = Hub(url, token)
        spec = {"n_workers": WORKERS, "worker": {"nthreads": 1, "memory": "4GiB"}}
        hub.apply({"type": "cluster", "name": "train-bench", "spec": spec})
        running = hub.wait("cluster/train-bench", {"running"}, timeout=120)
        bare = LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            memory_limit="4GiB",
            dashboard_address=":0",
        )
        try:
            with (
                Client(
                    running["endpoints"]["scheduler"],
                    security=hub.cluster_security("cluster/train-bench"),
                    timeout="60s",
                ) as titan_client,
                Client(bare) as bare_client,
            ):
                titan_client.wait_for_workers(WORKERS, timeout=120)
                clients = {"titan": titan_client, "bare": bare_client}
                for client in clients.values():  # warm up: imports, first compile
                    train_regression(client, 20_000, args.features, 2, "cpu")
                for run in range(args.repeat):
                    order = ["titan", "bare"] if run % 2 == 0 else ["bare", "titan"]
                    for name in order:
                        result, _booster = train_regression(
                            clients[name], args.rows, args.features, args.rounds, "cpu"
                        )
                        times[name].append(result.seconds)
                        console.print(
                            f"run {run + 1} {name}: {result.seconds:.2f}s, "
                            f"{result.rows_per_second:,.0f} rows/s, RMSE {result.rmse:.3f}"
                        )
        finally:
            bare.close()
            hub.delete("cluster/train-bench")
            hub.wait_gone("cluster/train-bench", timeout=60)
    titan, base = statistics.median(times["titan"]), statistics.median(times["bare"])
    table = Table("cluster", "median train s", "runs", "ratio", "target")
    table.add_row(
        "bare LocalCluster", f"{base:.2f}", " ".join(f"{t:.2f}" for t in times["bare"]), "1.00", ""
    )
    table.add_row(
        "Titan (local backend)",
        f"{titan:.2f}",
        " ".join(f"{t:.2f}" for t in times["titan"]),
        f"{titan / base:.3f}x",
        "<= 1.05x",
    )
    console.print(table)
    console.print(
        f"{args.rows:,} rows x {args.features} features, {args.rounds} rounds, "
        f"{WORKERS} workers x 1 thread, tree_method=hist on CPU"
    )


if __name__ == "__main__":
    main()
