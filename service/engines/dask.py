"""The Dask engine: one ``dask scheduler`` and named ``dask worker`` processes.

Everything Titan knows of Dask lives here: the scheduler's and workers'
command lines, the cluster's TLS certificate (made per cluster; with it the
scheduler accepts only TLS connections that present it) and the Dask settings
that point every process at it, the scheduler's address and dashboard, and
the calls that scale it (:mod:`service.core.scheduler_calls` speaks to the
scheduler). ``dask cuda worker`` runs where GPUs are allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from service.engines.base import (
    BIND_HOST,
    PYTHON,
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

TLS_CERT_FILE, TLS_KEY_FILE = "dask-cert.pem", "dask-key.pem"
REGISTERED = "Registered to:"  # a worker's log line once its scheduler accepted it


def tls_environment(folder: str) -> dict[str, str]:
    """Dask settings (as variables) making every program use the cluster's certificate
    in ``folder``: the scheduler accepts only TLS connections presenting it, and
    workers and clients (a notebook's plain ``distributed.Client()``) present it."""
    cert, key = f"{folder}/{TLS_CERT_FILE}", f"{folder}/{TLS_KEY_FILE}"
    values = {
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": cert,
    }
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        values[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] = cert
        values[f"DASK_DISTRIBUTED__COMM__TLS__{role}__KEY"] = key
    return values


class DaskEngine(Engine):
    """Dask clusters: a scheduler (the head) and workers that connect to it."""

    name = "dask"
    head = "scheduler"
    busy_metrics = ("dask_tasks_processing",)
    done_metric = "dask_tasks_completed_total"
    idle_words = "no Dask tasks"
    dashboard_page = "status"
    credential_keys = ("tls_cert", "tls_key")

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        # Connection arguments by certificate: building them writes the key to a file.
        self._connections: dict[str, dict[str, Any]] = {}

    def processes(
        self,
        cluster: ClusterFields,
        workers: Sequence[str],
        common: dict[str, Any],
        declared: bool,
        size: Resources,
    ) -> dict[str, PlannedProcess]:
        """The scheduler and one ``dask worker`` per name (``--nthreads``, memory limit)."""
        memory = cluster.scheduler.memory
        found = {
            self.head: PlannedProcess(
                name=self.head,
                role="scheduler",
                engine=self.name,
                ports={"scheduler": 1, "dashboard": 1},
                memory_bytes=parse_memory(memory) if memory else 0,
                head=True,
                **common,
            )
        }
        worker_memory = parse_memory(cluster.worker.memory or size.memory)
        gpus = cluster.worker.gpu or size.gpu
        for name in workers:
            found[name] = PlannedProcess(
                name=name,
                role="worker",
                engine=self.name,
                args={
                    "nthreads": cluster.worker.nthreads,
                    "memory_limit": worker_memory,
                    "gpu": bool(gpus),
                },
                cpu=float(cluster.worker.nthreads) if declared else 0.0,
                memory_bytes=worker_memory if declared or cluster.worker.memory else 0,
                gpu=gpus,
                attached=True,
                essential=False,
                **common,
            )
        return found

    def launch(self, planned: PlannedProcess, ports: dict[str, int], place: Place) -> Launch:
        """``dask scheduler`` (sampling itself through ``workers.plugins``) or a worker."""
        env = tls_environment(SECRETS_DIR) if place.secure else {}
        if planned.head:
            port, dashboard = ports["scheduler"], ports["dashboard"]
            argv = [PYTHON, "-m", "dask", "scheduler", "--host", BIND_HOST, "--port", str(port)]
            argv += ["--dashboard-address", f"{BIND_HOST}:{dashboard}"]
            if place.dashboard_prefix:
                argv += ["--dashboard-prefix", place.dashboard_prefix]
            if place.secure:
                argv += ["--protocol", "tls"]
            # Counts tasks and runs the scheduler's own telemetry sampler.
            argv += ["--preload", "workers.plugins"]
            return Launch(argv, env, ready_port=port, published=(port, dashboard), telemetry="none")
        args = planned.args
        program = ["cuda", "worker"] if args.get("gpu") else ["worker"]
        address = self._address(place.head_host, place.head_ports, place.secure)
        argv = [PYTHON, "-m", "dask", *program, address, "--name", planned.name]
        argv += ["--host", BIND_HOST, "--dashboard-address", f"{BIND_HOST}:0"]
        if not args.get("gpu"):  # dask-cuda runs one thread per GPU by design
            argv += ["--nthreads", str(args.get("nthreads", 1))]
        if args.get("memory_limit"):
            argv += ["--memory-limit", str(args["memory_limit"])]
        # Up once its scheduler has it: a cluster runs when its workers can take work.
        return Launch(argv, {**env, "DASK_SCHEDULER_ADDRESS": address}, ready_text=REGISTERED)

    def endpoints(
        self, planned: PlannedProcess, ports: dict[str, int], host: str, secure: bool
    ) -> dict[str, str]:
        """The scheduler's address and dashboard; nothing for a worker."""
        if not planned.head:
            return {}
        return {
            "scheduler": self._address(host, ports, secure),
            "dashboard": f"http://{host}:{ports['dashboard']}",
        }

    def attach(self, head_ports: dict[str, int], head_host: str, secure: bool) -> dict[str, str]:
        """``DASK_SCHEDULER_ADDRESS`` (and the TLS settings): ``distributed.Client()`` works."""
        env = tls_environment(SECRETS_DIR) if secure else {}
        return {**env, "DASK_SCHEDULER_ADDRESS": self._address(head_host, head_ports, secure)}

    def address(self, endpoints: dict[str, str]) -> str | None:
        """The scheduler's address."""
        return endpoints.get("scheduler")

    def secured(self, dask_tls: bool) -> bool:
        """Only where the operator keeps TLS on (TITAN_DASK_TLS, the default)."""
        return dask_tls

    def new_credentials(self) -> dict[str, str]:
        """A self-signed certificate and key: the cluster's own authority."""
        from distributed.security import Security

        made = Security.temporary()
        return {"tls_cert": str(made.tls_ca_file), "tls_key": str(made.tls_scheduler_key)}

    def secret_files(self, credentials: dict[str, str]) -> dict[str, str]:
        """The certificate and key, as files."""
        return {TLS_CERT_FILE: credentials["tls_cert"], TLS_KEY_FILE: credentials["tls_key"]}

    def client_view(self, address: str | None) -> dict[str, Any]:
        """``scheduler``: the address, under the name Dask clients know it by."""
        return {"scheduler": address}

    def calls(
        self, resource_id: str, endpoints: dict[str, str], credentials: dict[str, str]
    ) -> ClusterCalls:
        """Calls to the scheduler (over TLS with the cluster's certificate)."""
        from service.engines.dask_calls import SchedulerCalls

        address = endpoints["scheduler"]
        return SchedulerCalls(address, self._connection_args(credentials))

    def _connection_args(self, credentials: dict[str, str]) -> dict[str, Any]:
        if not credentials:
            return {}
        cert = credentials["tls_cert"]
        if cert not in self._connections:
            from service.client.security import cluster_security

            if len(self._connections) >= self.size:
                self._connections.clear()  # bounded: deleted clusters leave entries behind
            made = cluster_security(credentials).get_connection_args("client")
            self._connections[cert] = made
        return self._connections[cert]

    @staticmethod
    def _address(host: str, ports: dict[str, int], secure: bool) -> str:
        return f"{'tls' if secure else 'tcp'}://{host}:{ports['scheduler']}"
