"""Docker backend: a workspace with a 2-worker cluster, ready, against bare ``docker run``.

Titan: ``apply`` a workspace recipe with ``dask_cluster.n_workers: 2`` to an
embedded ``titan server`` with ``TITAN_BACKEND=docker``; the clock stops when
a Client on the host sees 2 workers and JupyterLab answers ``/api/status``.
Baseline, in the same run: the same four containers (scheduler, 2 workers,
JupyterLab with a fresh home volume; same image, entrypoint and flags)
started at once with docker-py on a fresh network, ready by the same test.
Runs alternate; medians are printed.
Run through ``python benchmarks/provision.py --backend docker``.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import docker
import httpx
from distributed import Client
from rich.console import Console
from rich.table import Table

from service.backends.ports import free_port_outside_ephemeral_range
from service.client import Hub, ResourceRef
from service.demo import embedded_server

IMAGE = os.environ.get("TITAN_DOCKER_IMAGE", "titan/cpu:latest")
SCHEDULER_FILE = ["--scheduler-file", "/tmp/titan/scheduler.json"]


def ready(address: str, jupyter: str, began: float) -> float:
    """Seconds since ``began`` once 2 workers serve at ``address`` and Jupyter answers."""
    deadline = time.monotonic() + 180
    while True:  # a published port accepts (and resets) before the scheduler listens
        try:
            with Client(address, timeout="120s") as client:
                client.wait_for_workers(2, timeout=180)
            break
        except OSError:  # CommClosedError included
            assert time.monotonic() < deadline, "the scheduler did not answer"
            time.sleep(0.05)
    while True:
        try:
            if httpx.get(jupyter, timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass  # not listening yet
        assert time.monotonic() < deadline, "JupyterLab did not answer"
        time.sleep(0.05)
    return time.perf_counter() - began


def titan(hub: Hub, index: int) -> float:
    ref = ResourceRef("workspace", f"bench-{index}")
    recipe = {"type": "workspace", "name": ref.name, "spec": {"dask_cluster": {"n_workers": 2}}}
    began = time.perf_counter()
    generation = hub.apply(recipe)["resource"]["generation"]
    # The clients' own polling interval (0.25 s), as `titan apply --wait` and TitanCluster use.
    resource = hub.wait(ref, {"running"}, generation=generation, timeout=300)
    try:
        base, ticket = resource["endpoints"]["jupyter"].split("/lab?ticket=")
        status = f"{base}/api/status?ticket={ticket}"
        return ready(resource["endpoints"]["scheduler"], status, began)
    finally:
        hub.delete(ref)
        hub.wait_gone(ref, timeout=120)


def bare(client: Any, prefix: str) -> float:
    name = f"{prefix}-bare-{uuid.uuid4().hex[:6]}"
    port = free_port_outside_ephemeral_range()
    address = f"tcp://{name}-scheduler:{port}"
    home = f"{name}-home"  # as Titan gives a workspace: a fresh named volume
    runs: list[tuple[str, list[str], dict[str, str], dict[Any, Any]]] = [
        (
            "scheduler",
            ["scheduler", "--port", str(port), "--dashboard-port", "8787", *SCHEDULER_FILE],
            {},
            {port: ("127.0.0.1", port), 8787: ("127.0.0.1", None)},
        ),
        *(
            (
                f"worker-{i}",
                ["worker", "--name", f"worker-{i}"],
                {"DASK_SCHEDULER_ADDRESS": address},
                {},
            )
            for i in range(2)
        ),
        (
            "jupyter",
            ["jupyter", "--port", "8888", "--root-dir", "/home/titan"],
            {"JUPYTER_TOKEN": "bench", "DASK_SCHEDULER_ADDRESS": address},
            {8888: ("127.0.0.1", None)},
        ),
    ]
    began = time.perf_counter()
    network = client.networks.create(name, driver="bridge")
    containers: list[Any] = []

    def run(process: str, args: list[str], env: dict[str, str], ports: dict[Any, Any]) -> None:
        containers.append(
            client.containers.run(
                IMAGE,
                ["--host", "0.0.0.0", *args],
                name=f"{name}-{process}",
                hostname=process,
                environment=env,
                ports=ports,
                network=name,
                detach=True,
                init=True,
                volumes={home: {"bind": "/home/titan", "mode": "rw"}}
                if process == "jupyter"
                else None,
            )
        )

    threads = [threading.Thread(target=run, args=r) for r in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        jupyter = next(c for c in containers if c.name.endswith("-jupyter"))
        jupyter.reload()
        host_port = jupyter.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"]
        status = f"http://127.0.0.1:{host_port}/api/status?token=bench"
        return ready(f"tcp://127.0.0.1:{port}", status, began)
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
        client.volumes.get(home).remove(force=True)


def main_docker(repeat: int) -> None:
    """Measure both, alternating, and print the table."""
    console = Console(width=120)
    client = docker.from_env()
    prefix = f"titanbench{uuid.uuid4().hex[:4]}"
    os.environ.update(TITAN_BACKEND="docker", TITAN_DOCKER_PREFIX=prefix)
    runs: dict[str, list[float]] = {"titan": [], "bare": []}
    measures: dict[str, Callable[[int], float]] = {}
    with embedded_server(console) as (url, token):
        hub = Hub(url, token)
        measures = {"bare": lambda i: bare(client, prefix), "titan": lambda i: titan(hub, i)}
        for index in range(repeat):
            for kind, measure in measures.items():
                runs[kind].append(measure(index))
    medians = {k: statistics.median(v) for k, v in runs.items()}
    table = Table("measure (median s)", "Titan (docker)", "bare docker run", "Titan / bare")
    table.add_row(
        "workspace + 2-worker cluster ready",
        f"{medians['titan']:.2f}",
        f"{medians['bare']:.2f}",
        f"{medians['titan'] / medians['bare']:.2f}",
    )
    console.print(f"{repeat} runs each, alternating; image {IMAGE}")
    console.print(table)
