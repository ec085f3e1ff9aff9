"""A 2-worker Dask cluster on Slurm through Titan vs bare ``sbatch`` of the same processes.

Needs a Slurm cluster whose nodes reach this machine at --control (``bash .ci/slurm``
makes one: nodes n1/n2 in network namespaces, this machine at 10.77.0.1). The time
until a Client on this machine has 2 workers, the median over --repeat runs,
alternating:

- Titan: ``apply`` a cluster recipe (2 workers, 1 thread, 1 GiB each) to an embedded
  ``titan server`` with the Slurm backend, wait for ``running`` as ``titan apply
  --wait`` does, connect (TLS with the cluster's certificate);
- bare: ``sbatch`` a ``dask scheduler`` on a chosen port, wait until Slurm runs it
  (``squeue``, to learn its node, as Titan must), ``sbatch`` 2 ``dask worker`` jobs
  with its address, connect (plain TCP).

Prints a table; the issue's target is Titan <= 1.25x bare.

Usage: python benchmarks/provision_slurm.py [--repeat 3] [--control 10.77.0.1]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import Client
from rich.console import Console
from rich.table import Table

from service.client import Hub
from service.demo import embedded_server

console = Console()
PREFIX = "titanbench"
SPEC = {"n_workers": 2, "worker": {"nthreads": 1, "memory": "1GiB"}}


def sbatch(folder: Path, name: str, command: str) -> str:
    """Submit ``command`` as a 1-CPU, 1 GiB job; its id."""
    out = subprocess.run(
        [
            "sbatch",
            "--parsable",
            f"--job-name={PREFIX}-bare-{name}",
            "-c",
            "1",
            "--mem=1024M",
            f"--output={folder / name}.log",
            f"--chdir={folder}",
            "--wrap",
            f"exec {command}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().split(";")[0]


def node_of(job: str) -> str:
    """The address of the node Slurm runs ``job`` on, once it runs."""
    while True:
        fields = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T %N"], check=True, capture_output=True, text=True
        ).stdout.split()
        if fields[:1] == ["RUNNING"] and len(fields) == 2:
            node = fields[1]
            line = subprocess.run(
                ["scontrol", "show", "node", "-o", node],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            return line.split("NodeAddr=", 1)[1].split()[0]
        time.sleep(0.05)


def bare() -> float:
    """Seconds from the first ``sbatch`` to a Client with 2 workers; then cancel the jobs."""
    folder = Path(tempfile.mkdtemp(prefix="slurm-bench-", dir="/tmp"))
    python = sys.executable
    port = random.randint(20000, 30000)
    jobs: list[str] = []
    began = time.perf_counter()
    try:
        jobs.append(
            sbatch(
                folder,
                "scheduler",
                f"{python} -m dask scheduler --host "
                f"$(hostname -I | cut -d' ' -f1) --port {port} --dashboard-address :0",
            )
        )
        address = f"tcp://{node_of(jobs[0])}:{port}"
        for index in range(2):
            jobs.append(
                sbatch(
                    folder,
                    f"worker-{index}",
                    f"{python} -m dask worker {address} "
                    "--nthreads 1 --memory-limit 1GiB --dashboard-address :0",
                )
            )
        with Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=120)
            return time.perf_counter() - began
    finally:
        subprocess.run(["scancel", *jobs], check=False)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def titan(hub: Hub, index: int) -> float:
    """Seconds from ``apply`` to a Client with 2 workers; then delete the cluster."""
    name = f"slurm-bench-{index}"
    began = time.perf_counter()
    hub.apply({"type": "cluster", "name": name, "spec": SPEC})
    running = hub.wait(f"cluster/{name}", {"running"}, timeout=300)
    security = hub.cluster_security(f"cluster/{name}")
    with Client(running["endpoints"]["scheduler"], security=security, timeout=120) as client:
        client.wait_for_workers(2, timeout=120)
        seconds = time.perf_counter() - began
    hub.delete(f"cluster/{name}")
    hub.wait_gone(f"cluster/{name}", timeout=120)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--control", default="10.77.0.1", help="where the nodes reach this machine")
    args = parser.parse_args()
    os.environ.update(
        TITAN_BACKEND="slurm",
        TITAN_HOST=args.control,
        TITAN_SLURM_JOB_PREFIX=PREFIX,
    )
    times: dict[str, list[float]] = {"titan": [], "bare": []}
    with embedded_server(console) as (url, token):
        hub = Hub(url, token)
        for index in range(args.repeat):
            order = ("bare", "titan") if index % 2 == 0 else ("titan", "bare")
            for name in order:
                times[name].append(bare() if name == "bare" else titan(hub, index))
            console.print(
                f"run {index}: bare {times['bare'][-1]:.2f}s, titan {times['titan'][-1]:.2f}s"
            )
    table = Table(title="2-worker Dask cluster on Slurm, ready to a Client, median seconds")
    for column in ("bare sbatch", "Titan (slurm backend)", "ratio", "target"):
        table.add_column(column)
    titan_s, bare_s = statistics.median(times["titan"]), statistics.median(times["bare"])
    table.add_row(f"{bare_s:.2f}", f"{titan_s:.2f}", f"{titan_s / bare_s:.2f}x", "<= 1.25x")
    console.print(table)


if __name__ == "__main__":
    main()
