"""A 2-worker Dask cluster on Slurm through Titan vs bare ``sbatch`` of the same processes.

Needs a Slurm cluster whose nodes reach this machine at --control (``bash .ci/slurm``
makes one: nodes n1/n2 in network namespaces, this machine at 10.77.0.1). The time
until a Client on this machine has 2 workers, the median over --repeat runs,
alternating:

- Titan: ``apply`` a cluster recipe (2 workers, 1 thread, 1 GiB each) to an embedded
  ``titan server`` with the Slurm backend, wait for ``running`` as ``titan apply
  --wait`` does, connect (TLS with the cluster's certificate);
- bare: the Dask engine's own command lines (TLS with a fresh certificate, the same
  ports chosen the same way), without Titan: ``sbatch`` the scheduler, wait until Slurm
  runs it (``squeue``, to learn its node, as Titan must), ``sbatch`` the 2 workers with
  its address, connect.

Prints a table; the issue's target is Titan <= 1.25x bare.

Usage: python benchmarks/provision_slurm.py [--repeat 3] [--control 10.77.0.1]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import Client
from rich.console import Console
from rich.table import Table

from service.backends.ports import free_ports
from service.client import Hub
from service.client.security import cluster_security
from service.core.workloads.processes import planned_processes
from service.demo import embedded_server
from service.engines.base import BIND_HOST, PYTHON, SECRETS_DIR, Place
from service.engines.dask import DaskEngine
from service.recipes.models import parse_recipe

console = Console()
PREFIX = "titanbench"
SPEC = {"n_workers": 2, "worker": {"nthreads": 1, "memory": "1GiB"}}


def sbatch(folder: Path, name: str, command: str, env: dict[str, str]) -> str:
    """Submit ``command`` (a shell line) as a 1-CPU, 1 GiB job with ``env``; its id."""
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
            f"host=$(hostname -I | cut -d' ' -f1); exec {command}",
        ],
        env=env,
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
            line = subprocess.run(
                ["scontrol", "show", "node", "-o", fields[1]],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            return line.split("NodeAddr=", 1)[1].split()[0]
        time.sleep(0.05)


def shell_line(argv: list[str]) -> str:
    """``argv`` as a shell line: Titan's placeholders made what Titan's entrypoint makes
    them (this Python, the node's address in ``$host``)."""
    words = []
    for arg in argv:
        arg = arg.replace(PYTHON, sys.executable)
        if BIND_HOST in arg:
            words.append('"' + arg.replace(BIND_HOST, "$host") + '"')
        else:
            words.append(shlex.quote(arg))
    return " ".join(words)


def bare() -> float:
    """Seconds from the first ``sbatch`` to a Client with 2 workers; then cancel the jobs.

    The processes are the Dask engine's own (the same command lines, TLS with a fresh
    certificate, the scheduler's preload), without Titan: no entrypoint, no sampler.
    """
    engine = DaskEngine()
    recipe = parse_recipe({"type": "cluster", "name": "bare", "spec": SPEC})
    planned = planned_processes(recipe, {})
    ports = {name: free_ports("0.0.0.0", p.ports, probe=False) for name, p in planned.items()}
    folder = Path(tempfile.mkdtemp(prefix="slurm-bench-", dir="/tmp"))
    credentials = engine.new_credentials()
    for name, value in engine.secret_files(credentials).items():
        (folder / name).write_text(value)
    place = Place("", ports["scheduler"], secure=True)
    jobs: list[str] = []
    began = time.perf_counter()
    try:
        for name, process in planned.items():
            launch = engine.launch(process, ports[name], place)
            env = {k: v.replace(SECRETS_DIR, str(folder)) for k, v in launch.env.items()}
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}, **env}
            jobs.append(sbatch(folder, name, shell_line(launch.argv), env))
            if process.head:  # the workers learn where it landed, as Titan's do
                host = node_of(jobs[0])
                address = f"tls://{host}:{ports[name]['scheduler']}"
                place = Place(host, ports[name], secure=True)
        security = cluster_security(credentials)
        with Client(address, security=security, timeout=120) as client:
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
