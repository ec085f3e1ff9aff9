"""The engine contract: what a cluster engine (Dask, Ray) decides, and nothing else.

An engine owns everything engine-specific about a cluster: which processes it
has (:meth:`Engine.processes`), how each one is launched (argv, environment,
ports, readiness: :meth:`Engine.launch`), the addresses it serves
(:meth:`Engine.endpoints`), what attached workspaces and jobs get to reach it
(:meth:`Engine.attach`), its credentials, how it scales and which metrics mean
"busy". Backends start the :class:`Launch` it returns and know no engine; the
reconciler, autoscaler and idle detection ask the engine. A third engine is
one new module registered in :mod:`service.engines`.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from service.recipes.models import ClusterFields, Resources

# Placeholders a launch's argv may hold, filled in by the process's entrypoint where it
# runs (see workers/entrypoint.py); environment values may name ${TITAN_SECRETS_DIR},
# filled in by the backend once it knows where the secret files are.
PYTHON = "${TITAN_PYTHON}"  # the interpreter the entrypoint runs on
BIND_HOST = "${TITAN_BIND_HOST}"  # the address servers listen on (127.0.0.1, or 0.0.0.0)
NODE_IP = "${TITAN_NODE_IP}"  # the address other processes of the resource reach it at
SCRATCH = "${TITAN_SCRATCH}"  # a short private folder (unix socket paths are short)
SECRETS_DIR = "${TITAN_SECRETS_DIR}"  # where its secret files are


@dataclass(frozen=True)
class PlannedProcess:
    """One process a recipe asks for, before it has a token, ports or an address.

    ``engine`` names who launches it (a cluster engine; "" for a workspace's
    JupyterLab or a job's command) and ``args`` are that launcher's own
    parameters. Everything here is part of ``spec_hash``: a change restarts it.
    """

    name: str
    role: str  # "scheduler", "worker", "head", "jupyter", "job": shown and labelled
    engine: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # port name → how many in a row
    env: dict[str, str] = field(default_factory=dict)
    cpu: float = 0.0  # CPUs requested from the ledger (0: best effort, nothing declared)
    memory_bytes: int = 0  # memory requested from the ledger
    gpu: float = 0  # whole GPUs, or a share of one GPU when below 1
    image: str | None = None
    working_directory: str | None = None
    start_script: str | None = None
    head: bool = False  # the cluster's central process: everything attached holds its address
    attached: bool = False  # reaches its cluster's head (a worker, or an attached main process)
    essential: bool = True  # the resource is down without it (a worker is not: replaced)
    secrets: list[dict[str, Any]] = field(default_factory=list)  # SecretRef fields, no values
    folders: list[dict[str, Any]] = field(default_factory=list)  # FolderRef fields
    # Options for a backend with its own scheduler (Slurm: partition, account, qos,
    # time_limit); empty: the operator's defaults.
    scheduling: dict[str, str] = field(default_factory=dict)

    @property
    def spec_hash(self) -> str:
        """Fingerprint of everything that requires a restart when it changes."""
        data = asdict(self)
        if not data["scheduling"]:  # as before there was such a field: nothing restarts
            del data["scheduling"]
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Launch:
    """How a backend runs one process: the program and what tells it is up."""

    argv: list[str]  # may hold the placeholders above
    env: dict[str, str] = field(default_factory=dict, repr=False)
    ready_port: int | None = None  # up once this port accepts connections; None: at once
    ready_text: str | None = None  # up once the program prints this line (instead)
    published: tuple[int, ...] = ()  # ports the control plane's host must reach
    telemetry: str = "process"  # "process", "none" (samples itself), "jupyter", "ray"
    home: bool = False  # gets a home folder that outlives restarts (a workspace)


@dataclass(frozen=True)
class Place:
    """Where a process is launched: how it reaches its cluster's head, and with what."""

    head_host: str  # the head as this process reaches it ("127.0.0.1", or a container name)
    head_ports: dict[str, int]  # the head's ports (empty for the head itself)
    secure: bool  # the cluster's credentials are in its secret files
    dashboard_prefix: str = ""  # the path the control plane relays its dashboard under
    jupyter_prefix: str = ""  # the path the control plane relays a workspace's JupyterLab under


class ClusterCalls(Protocol):
    """The calls the control plane makes to a running cluster to scale it, each bounded
    in time. Use as ``async with engine.calls(...) as cluster:``."""

    async def __aenter__(self) -> ClusterCalls: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def adaptive_target(self) -> int:
        """How many workers the cluster's current work asks for."""
        ...

    async def workers(self) -> dict[str, str]:
        """Each connected worker's name and status (``running`` when it takes work)."""
        ...

    async def idle_workers(self, keep: int) -> list[str]:
        """Names of workers that can go while ``keep`` stay: none of them runs work."""
        ...

    async def retire(self, names: list[str], timeout: float = 60.0) -> list[str]:
        """Let workers ``names`` hand over their work and data; the names that did."""
        ...


class Engine(abc.ABC):
    """One kind of cluster. Instances are stateless; one per engine name."""

    name: str
    head: str  # the process name of the cluster's head
    # Metrics (from the processes' samplers) that mean the cluster is working, above 0.
    busy_metrics: tuple[str, ...] = ()
    # A counter that, when it moves, means work was done (None: none).
    done_metric: str | None = None
    idle_words: str = "no work"  # what an idle cluster does not do, for the stop reason
    dashboard: str = "dashboard"  # the endpoint relayed under /dashboards/<resource id>/
    dashboard_page: str = ""  # the page its dashboard link opens, under that path
    credential_keys: tuple[str, ...] = ()  # what new_credentials returns
    # Whether workers may start with their head (they wait for it); else the head first,
    # then each worker once the one before it has joined.
    starts_together: bool = True

    @abc.abstractmethod
    def processes(
        self,
        cluster: ClusterFields,
        workers: Sequence[str],
        common: dict[str, Any],
        declared: bool,
        size: Resources,
    ) -> dict[str, PlannedProcess]:
        """The head and the named ``workers`` of ``cluster``, head first.

        ``common`` holds the fields every process of the resource shares;
        ``declared`` whether the recipe sized its processes (only then are
        CPUs reserved); ``size`` the memory and GPUs per worker where the
        cluster does not say (for an attached cluster, without GPUs).
        """

    @abc.abstractmethod
    def launch(self, planned: PlannedProcess, ports: dict[str, int], place: Place) -> Launch:
        """How to run ``planned`` listening on ``ports`` (first port of each name)."""

    @abc.abstractmethod
    def endpoints(
        self, planned: PlannedProcess, ports: dict[str, int], host: str, secure: bool
    ) -> dict[str, str]:
        """The addresses ``planned`` serves once up, as reached at ``host``."""

    @abc.abstractmethod
    def attach(self, head_ports: dict[str, int], head_host: str, secure: bool) -> dict[str, str]:
        """Variables that let a workspace's or job's own programs reach the cluster."""

    @abc.abstractmethod
    def address(self, endpoints: dict[str, str]) -> str | None:
        """The cluster's address among its head's endpoints (what attached processes hold)."""

    def secured(self, dask_tls: bool) -> bool:
        """Whether the cluster's processes get its credentials (``dask_tls``: the operator's
        TITAN_DASK_TLS)."""
        return True

    @abc.abstractmethod
    def new_credentials(self) -> dict[str, str]:
        """Fresh credentials for one cluster (stored encrypted, made at first start)."""

    @abc.abstractmethod
    def secret_files(self, credentials: dict[str, str]) -> dict[str, str]:
        """The secret files (name → content) the cluster's and attached processes get."""

    def relay(
        self, endpoint: str, prefix: str, credentials: dict[str, str]
    ) -> tuple[str, dict[str, str]]:
        """Where the control plane sends a dashboard request for ``prefix``/PATH (the URL
        PATH is appended to) and the headers it adds: the dashboard served under
        ``prefix`` itself, with no credentials, unless the engine says otherwise."""
        return endpoint + prefix, {}

    def missing(self) -> str:
        """What is missing for its processes to run on this machine, and how to get it
        ("" when nothing is)."""
        return ""

    def client_view(self, address: str | None) -> dict[str, Any]:
        """What clients of the credentials API get besides ``engine`` and ``address``."""
        return {}

    @abc.abstractmethod
    def calls(
        self, resource_id: str, endpoints: dict[str, str], credentials: dict[str, str]
    ) -> ClusterCalls:
        """Calls to the cluster whose head serves ``endpoints`` (``credentials`` empty
        where the cluster is not secured)."""
