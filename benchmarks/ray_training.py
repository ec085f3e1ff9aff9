"""Training overhead on Ray: the same XGBoost run on a Titan Ray cluster and a bare one.

Starts, one after the other, a Titan Ray cluster (embedded ``titan server``, local
backend: head and 2 worker nodes as Titan's processes, token auth, each with
its telemetry sampler) and a bare Ray cluster of the same shape (the Ray
engine's own ``ray start`` lines started by this script, see ``bare_ray.py``).
On each it runs the same ``workers.training --engine ray`` training
(``train_on_ray``: Ray Train's ``XGBoostTrainer``, 2 workers, ``hist`` on
CPU) --repeat times after one warm-up run, every run from a fresh driver
process as a Titan job is. Only one cluster exists at a time: on a 2-core
machine an idle Ray cluster's own processes slow the other one's training. Compares medians of

- train: ``xgboost.train`` inside the Ray Train workers (what the model costs);
- run: the driver's whole ``train_on_ray`` (connect, Ray Train's setup, the
  booster back).

The issue's target: Titan <= 1.05x bare.

Usage: python benchmarks/ray_training.py [--rows 500000] [--rounds 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bare_ray import bare_ray_cluster, driver_environment
from rich.console import Console
from rich.table import Table

from service.client import Hub
from service.demo import embedded_server

console = Console()
SPEC = {"engine": "ray", "n_workers": 2, "worker": {"nthreads": 1, "memory": "3GiB"}}
DRIVER = """
import json, sys, time
from workers.training.ray_train import train_on_ray
rows, features, rounds = (int(a) for a in sys.argv[1:4])
began = time.perf_counter()
result, _ = train_on_ray(rows, features, rounds, device="cpu")
print("RESULT " + json.dumps(
    {"train": result.seconds, "run": time.perf_counter() - began, "rmse": result.rmse}))
"""


def train(address: str, token: str, rows: int, features: int, rounds: int) -> dict[str, float]:
    """One training run from a fresh driver process: its train and run seconds, RMSE."""
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(rows), str(features), str(rounds)],
        env=driver_environment(address, token),
        capture_output=True,
        text=True,
        timeout=900,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    output = done.stdout[-2000:] + done.stderr[-4000:]
    raise RuntimeError(f"training failed ({done.returncode}): {output}")


@contextmanager
def titan_cluster(hub: Hub) -> Iterator[tuple[str, str]]:
    """A Titan Ray cluster of ``SPEC``: its Ray Client address and token; deleted after."""
    hub.apply({"type": "cluster", "name": "ray-train-bench", "spec": SPEC})
    try:
        running = hub.wait("cluster/ray-train-bench", {"running"}, timeout=600)
        yield running["endpoints"]["ray"], hub.credentials("cluster/ray-train-bench")["ray_token"]
    finally:
        hub.delete("cluster/ray-train-bench")
        hub.wait_gone("cluster/ray-train-bench", timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shape = (args.rows, args.features, args.rounds)
    runs: dict[str, list[dict[str, float]]] = {"titan": [], "bare": []}
    with embedded_server(console) as (url, token):
        hub = Hub(url, token)
        # One cluster at a time: an idle Ray cluster's own processes take CPU from the
        # other's training on a small machine.
        for name in ("bare", "titan"):
            with bare_ray_cluster(SPEC) if name == "bare" else titan_cluster(hub) as cluster:
                train(*cluster, 20_000, args.features, 2)  # warm up: imports, caches
                for run in range(args.repeat):
                    result = train(*cluster, *shape)
                    runs[name].append(result)
                    console.print(
                        f"run {run + 1} {name}: train {result['train']:.2f}s, "
                        f"run {result['run']:.2f}s, RMSE {result['rmse']:.3f}"
                    )
    table = Table("measure", "bare Ray", "Titan", "ratio", "target")
    for measure in ("train", "run"):
        titan = statistics.median(r[measure] for r in runs["titan"])
        base = statistics.median(r[measure] for r in runs["bare"])
        table.add_row(
            f"{measure} s (median)",
            f"{base:.2f}",
            f"{titan:.2f}",
            f"{titan / base:.3f}x",
            "<= 1.05x",
        )
    console.print(table)
    console.print(
        f"{args.rows:,} rows x {args.features} features, {args.rounds} rounds, 2 Ray Train "
        "workers (one per worker node, 1 CPU each), tree_method=hist on CPU"
    )


if __name__ == "__main__":
    main()
