"""A bare Ray cluster of a recipe's shape: the Ray engine's own ``ray start`` lines, no Titan.

Used by the Ray benchmarks as their baseline: the same processes Titan would
start for the recipe (same command lines, pinned ports, sizes and token),
started by the benchmark itself, head first and each worker once the one
before joined, as Titan does.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.backends.ports import free_ports
from service.core.workloads.processes import planned_processes
from service.engines.base import Place
from service.engines.ray import STARTED, RayEngine, token_environment
from service.recipes.models import parse_recipe


def driver_environment(address: str, token: str) -> dict[str, str]:
    """This process's environment for a Ray driver of the cluster at ``address``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TITAN_"))}
    env.update(RAY_ADDRESS=address, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    return env


@contextmanager
def bare_ray_cluster(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Start the Ray nodes of a cluster recipe with ``spec``; yield (Ray Client address, token).

    Returns once every node has said it started; on exit every node's process
    group is ended and its folders removed.
    """
    engine = RayEngine()
    recipe = parse_recipe({"type": "cluster", "name": "bare", "spec": spec})
    planned = planned_processes(recipe, {})
    ports = {name: free_ports("127.0.0.1", p.ports) for name, p in planned.items()}
    token = secrets.token_hex(32)
    folder = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))
    (folder / "ray-token").write_text(token)
    place = Place("127.0.0.1", ports["head"], secure=True)
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        for name, process in planned.items():
            launch = engine.launch(process, ports[name], place)
            values = {
                "${TITAN_PYTHON}": sys.executable,
                "${TITAN_NODE_IP}": "127.0.0.1",
                "${TITAN_BIND_HOST}": "127.0.0.1",
                "${TITAN_SCRATCH}": str(folder / name),
            }
            argv = [values.get(arg, arg) for arg in launch.argv]
            env = {**os.environ, **launch.env, **token_environment(str(folder))}
            node = subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            nodes.append(node)
            assert node.stdout is not None
            for line in node.stdout:  # joined once it says so, as Titan waits
                if STARTED.encode() in line:
                    break
        yield f"ray://127.0.0.1:{ports['head']['client']}", token
    finally:
        for node in nodes:
            os.killpg(node.pid, signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(folder)], check=False)
