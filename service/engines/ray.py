"""The Ray engine: a head node and named worker nodes, each one ``ray start --block``.

Everything Titan knows of Ray lives here and in :mod:`service.engines.ray_calls`:
the nodes' command lines with every port pinned (two clusters on one machine
never collide) and each node's own temporary folder, the cluster's
authentication token (made per cluster; every node, attached workspace and
job gets it as a secret file, and nothing of the cluster answers without
it), the addresses clients use (Ray Client ``ray://``, the dashboard and Jobs
API, relayed by the control plane), and what "busy" and "wanted" mean.
The head runs no tasks (``--num-cpus 0``): work goes to the worker nodes, so
scaling them is scaling the cluster. Nodes are stopped by their process
group or container only: never ``ray stop``, which ends every Ray process on
the machine.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from service.engines.base import (
    BIND_HOST,
    NODE_IP,
    PYTHON,
    SCRATCH,
    SECRETS_DIR,
    ClusterCalls,
    Engine,
    Launch,
    Place,
    PlannedProcess,
)
from service.recipes.units import parse_memory

if TYPE_CHECKING:
    from service.recipes.models import ClusterFields, Resources

TOKEN_FILE = "ray-token"
# What `ray start` says once its node has joined the cluster (its ports open before).
STARTED = "Ray runtime started."
WORKER_PORTS = 50  # ports in a row for each node's task, actor and driver processes
# Ray's own defaults size every node by the whole machine (memory, and 30 % of it for
# objects), so each node says its size: the recipe's, or these.
HEAD_MEMORY = 1024**3
HEAD_OBJECT_STORE = 128 * 1024**2
MIN_OBJECT_STORE = 75 * 1024**2  # Ray's minimum
# Ports every node listens on, besides its task and actor processes' range.
NODE_PORTS = (
    "node_manager",
    "object_manager",
    "agent_listen",
    "agent_grpc",
    "metrics",
    "runtime_env",
)
# The head's, and two its dashboard and autoscaler serve metrics on (fixed by Ray unless
# set through DASHBOARD_METRIC_PORT and AUTOSCALER_METRIC_PORT).
HEAD_PORTS = ("gcs", "client", "dashboard", "dashboard_metrics", "autoscaler_metrics")
# The flags of ``ray start`` each port is given by.
FLAGS = {
    "gcs": "--port",
    "client": "--ray-client-server-port",
    "dashboard": "--dashboard-port",
    "node_manager": "--node-manager-port",
    "object_manager": "--object-manager-port",
    "agent_listen": "--dashboard-agent-listen-port",
    "agent_grpc": "--dashboard-agent-grpc-port",
    "metrics": "--metrics-export-port",
    "runtime_env": "--runtime-env-agent-port",
}


def token_environment(folder: str = SECRETS_DIR) -> dict[str, str]:
    """Ray settings (as variables) making every node and driver present the cluster's
    token from its file in ``folder``."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": f"{folder}/{TOKEN_FILE}"}


class RayEngine(Engine):
    """Ray clusters: a head (GCS, dashboard, Ray Client server) and worker nodes."""

    name = "ray"
    head = "head"
    busy_metrics = ("ray_tasks_running", "ray_actors_alive", "ray_jobs_running")
    idle_words = "no Ray tasks, actors or jobs"
    credential_keys = ("ray_token",)
    # A worker node's `ray start` gives up if the head is not there, and nodes starting at
    # the same moment on a small machine time out joining: one at a time.
    starts_together = False

    def processes(
        self,
        cluster: ClusterFields,
        workers: Sequence[str],
        common: dict[str, Any],
        declared: bool,
        size: Resources,
    ) -> dict[str, PlannedProcess]:
        """The head (no CPUs for tasks) and one worker node per name, sized by the recipe:
        ``worker.nthreads`` CPUs, ``worker.memory``, ``worker.gpu`` whole GPUs and
        ``worker.object_store_memory``."""
        node_ports = {name: 1 for name in NODE_PORTS} | {"workers": WORKER_PORTS}
        memory = cluster.scheduler.memory
        found = {
            self.head: PlannedProcess(
                name=self.head,
                role="head",
                engine=self.name,
                args={
                    "memory": parse_memory(memory) if memory else HEAD_MEMORY,
                    "object_store_memory": HEAD_OBJECT_STORE,
                },
                ports={name: 1 for name in HEAD_PORTS} | node_ports,
                memory_bytes=parse_memory(memory) if memory else 0,
                head=True,
                **common,
            )
        }
        worker_memory = parse_memory(cluster.worker.memory or size.memory)
        store = cluster.worker.object_store_memory
        gpus = int(cluster.worker.gpu or size.gpu)
        for name in workers:
            found[name] = PlannedProcess(
                name=name,
                role="worker",
                engine=self.name,
                args={
                    "cpus": cluster.worker.nthreads,
                    "memory": worker_memory,
                    "gpus": gpus,
                    "object_store_memory": (
                        parse_memory(store) if store else max(MIN_OBJECT_STORE, worker_memory // 4)
                    ),
                },
                ports=node_ports,
                cpu=float(cluster.worker.nthreads) if declared else 0.0,
                memory_bytes=worker_memory if declared or cluster.worker.memory else 0,
                gpu=gpus,
                attached=True,
                essential=False,
                **common,
            )
        return found

    def launch(self, planned: PlannedProcess, ports: dict[str, int], place: Place) -> Launch:
        """``ray start --block`` with every port pinned, its own temporary folder, and the
        node's name as a resource (``titan-node:<name>``) so the cluster's node list says
        which node is which process."""
        argv = [PYTHON, "-m", "workers.ray_node", "--block"]
        argv += ["--node-ip-address", NODE_IP, "--temp-dir", SCRATCH, "--disable-usage-stats"]
        for name in NODE_PORTS:
            argv += [FLAGS[name], str(ports[name])]
        first = ports["workers"]
        argv += [
            "--min-worker-port",
            str(first),
            "--max-worker-port",
            str(first + WORKER_PORTS - 1),
        ]
        args = planned.args
        argv += ["--memory", str(args["memory"])]
        argv += ["--object-store-memory", str(args["object_store_memory"])]
        env = {**token_environment(), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
        # Stopping drains the node first; within the backend's stop grace period.
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "5"
        if planned.head:
            argv += ["--head", "--num-cpus", "0", "--num-gpus", "0"]
            argv += ["--dashboard-host", BIND_HOST, "--include-dashboard", "true"]
            for name in ("gcs", "client", "dashboard"):
                argv += [FLAGS[name], str(ports[name])]
            env["DASHBOARD_METRIC_PORT"] = str(ports["dashboard_metrics"])
            # A Ray Client session's own server may take a while to start on a busy node.
            env["RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S"] = "120"
            env["AUTOSCALER_METRIC_PORT"] = str(ports["autoscaler_metrics"])
            argv += ["--resources", json.dumps({f"titan-node:{planned.name}": 1})]
            dashboard = ports["dashboard"]
            return Launch(
                argv,
                env,
                ready_port=dashboard,
                ready_text=STARTED,
                published=(ports["gcs"], ports["client"], dashboard),
                telemetry=f"ray:{dashboard}",
            )
        argv += ["--address", f"{place.head_host}:{place.head_ports['gcs']}"]
        argv += ["--num-cpus", str(args["cpus"]), "--num-gpus", str(args["gpus"])]
        argv += ["--resources", json.dumps({f"titan-node:{planned.name}": 1})]
        return Launch(argv, env, ready_text=STARTED)

    def endpoints(
        self, planned: PlannedProcess, ports: dict[str, int], host: str, secure: bool
    ) -> dict[str, str]:
        """The head's Ray Client address (``ray://``), GCS address and dashboard."""
        if not planned.head:
            return {}
        return {
            "ray": f"ray://{host}:{ports['client']}",
            "gcs": f"{host}:{ports['gcs']}",
            "dashboard": f"http://{host}:{ports['dashboard']}",
        }

    def attach(self, head_ports: dict[str, int], head_host: str, secure: bool) -> dict[str, str]:
        """``RAY_ADDRESS`` (Ray Client) and the token: a plain ``ray.init()`` connects."""
        return {**token_environment(), "RAY_ADDRESS": f"ray://{head_host}:{head_ports['client']}"}

    def address(self, endpoints: dict[str, str]) -> str | None:
        """The Ray Client address."""
        return endpoints.get("ray")

    def new_credentials(self) -> dict[str, str]:
        """A random token (256 bits)."""
        return {"ray_token": secrets.token_hex(32)}

    def secret_files(self, credentials: dict[str, str]) -> dict[str, str]:
        """The token, as a file."""
        return {TOKEN_FILE: credentials["ray_token"]}

    def relay(
        self, endpoint: str, prefix: str, credentials: dict[str, str]
    ) -> tuple[str, dict[str, str]]:
        """The dashboard at its root (Ray serves under no prefix; its pages ask for what
        they need by relative paths), with the cluster's token added."""
        return endpoint, {"Authorization": f"Bearer {credentials.get('ray_token', '')}"}

    def missing(self) -> str:
        """Ray itself, where this machine runs the cluster's nodes."""
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            return (
                "Ray is not installed where this control plane runs its processes: "
                "install it with pip install 'titan[ray]' (or use engine 'dask')"
            )
        return ""

    def calls(
        self, resource_id: str, endpoints: dict[str, str], credentials: dict[str, str]
    ) -> ClusterCalls:
        """Calls to the head's dashboard (its state and autoscaler APIs), with the token."""
        from service.engines.ray_calls import RayCalls

        return RayCalls(endpoints["dashboard"], credentials.get("ray_token", ""))
