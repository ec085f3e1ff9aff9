"""The backend contract: a handful of async methods every backend implements.

A backend knows nothing of recipes, users or the database. It starts one
process from a :class:`ProcessSpec`, reports on it through a JSON-serialisable
handle, and stops it. The reconciler stores handles, so a restarted control
plane can ask the backend about processes it started before.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.backends.nodes import Inventory, local_inventory
from service.errors import BackendError

Handle = dict[str, Any]
Checkpoint = Callable[[Handle], Awaitable[None]]


@dataclass(frozen=True)
class ProcessSpec:
    """Everything a backend needs to start one process of a resource.

    ``argv`` is the program (made by its engine, see service/engines), run by
    ``python -m workers.entrypoint`` (see :func:`entrypoint_args`), which fills
    in its placeholders, says when it is ready and samples it. It listens on
    ``ports`` (the numbers ``reserve_ports`` chose; the same inside a container
    and on its host), of which ``published`` must be reachable from the control
    plane's host (docker publishes them on its publish host only).
    """

    resource_id: str
    name: str
    role: str  # shown and labelled only: "scheduler", "worker", "head", "jupyter", "job"
    argv: list[str]
    env: dict[str, str] = field(repr=False)  # may hold secret values: never shown
    ports: list[int] = field(default_factory=list)
    published: tuple[int, ...] = ()
    ready_port: int | None = None  # ready once it accepts connections; None: at once
    ready_text: str | None = None  # ready once the program prints this (instead)
    telemetry: str = "process"  # what the entrypoint samples (see workers/entrypoint.py)
    home: bool = False  # a home folder that outlives restarts (a workspace's notebooks)
    cpu: float = 0.0
    memory_bytes: int = 0
    gpus: list[str] = field(default_factory=list)  # the GPUs Titan's ledger gave it (UUIDs)
    gpu_count: float = 0.0  # GPUs asked for: what a backend that ``allocates`` binds itself
    # Options for a backend with its own scheduler (Slurm: partition, account, qos, time_limit)
    scheduling: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    working_directory: str | None = None
    start_script: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # owner, resource, generation
    output_dir: str | None = None  # host folder a job writes its results to (TITAN_OUTPUT_DIR)
    # Secret values to write as files (name → value) into $TITAN_SECRETS_DIR, readable only
    # by the process; never stored, logged or shown.
    secret_files: dict[str, str] = field(default_factory=dict, repr=False)
    folders: list[FolderMount] = field(default_factory=list)
    # The OS account the process runs as where the backend shares a host with the control
    # plane (see service/core/identity/accounts.py); None: the control plane's own account.
    account: str | None = None


@dataclass(frozen=True)
class FolderMount:
    """A shared folder to mount into a process: its host folder and where it appears."""

    owner: str
    name: str
    host_path: str  # the folder on the node (docker: what its named volume is bound to)
    path: str  # where containers see it
    read_only: bool = False


# What a process inherits from the control plane's environment, and nothing else (as
# JupyterHub's Spawner.env_keep): the operator's credentials, proxies and agent sockets
# stay with the control plane. TITAN_PASS_ENVIRONMENT adds names.
INHERITED = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
    "CONDA_PREFIX",
    "LD_LIBRARY_PATH",
    "OPENBLAS_CORETYPE",  # set on some CPUs where older OpenBLAS builds compute wrong results
    "OPENBLAS_L2_SIZE",
)


def inherited_environment(passed: Sequence[str] = ()) -> dict[str, str]:
    """The control plane's variables a process it starts may see: ``INHERITED`` and the
    operator's ``passed`` names, where set."""
    return {name: os.environ[name] for name in (*INHERITED, *passed) if name in os.environ}


SECRETS_DIR = "${TITAN_SECRETS_DIR}"


def process_environment(spec: ProcessSpec, folder: str) -> dict[str, str]:
    """``spec.env`` with ``TITAN_SECRETS_DIR`` set to ``folder`` (where its secret files
    are) and named in values that refer to it (so every program in the process or its
    container, ``docker exec`` too, finds them, e.g. a cluster engine's settings)."""
    env = dict(spec.env)
    if spec.secret_files:
        env = {name: value.replace(SECRETS_DIR, folder) for name, value in env.items()}
        env["TITAN_SECRETS_DIR"] = folder
    return env


def entrypoint_args(spec: ProcessSpec, host: str) -> list[str]:
    """The arguments of ``python -m workers.entrypoint`` that run ``spec``, its servers
    listening on ``host``: the one place a backend's command line is made."""
    args = ["--host", host, "--name", spec.name, "--telemetry", spec.telemetry]
    if spec.ready_port is not None:
        args += ["--ready-port", str(spec.ready_port)]
    if spec.ready_text is not None:
        args += ["--ready-text", spec.ready_text]
    return [*args, "--", *spec.argv]


@dataclass(frozen=True)
class Started:
    """A process that is up: its handle."""

    handle: Handle


@dataclass(frozen=True)
class ProcessState:
    """What a backend observes of a process now."""

    running: bool
    exit_code: int | None = None
    reason: str = ""  # why it ended, in a user's words ("killed: out of memory ...")
    # Not started yet: queued by the backend's own scheduler, and why in its words
    # (Slurm: "Resources", "Priority"). Such a process is neither running nor ended.
    waiting: str = ""


class Queued(Exception):
    """Raised by ``start`` when the backend's own scheduler has queued the process (its
    handle is checkpointed): the reason, in the scheduler's words. ``status`` then
    reports it ``waiting`` until it runs; ``finish_start`` waits until it serves."""


@dataclass(frozen=True)
class LogChunk:
    """Log text from ``offset`` on, and the offset to ask for next time; ``start`` is
    the byte offset the text begins at (None: not known)."""

    text: str
    next_offset: int
    start: int | None = None


def handle_identity(handle: Handle) -> tuple[Any, Any, Any]:
    """What tells one started process from every other: resource, name, and its pid,
    container or Slurm job."""
    instance = handle.get("pid", handle.get("id", handle.get("job_id")))
    return handle.get("resource_id"), handle.get("name"), instance


async def ended_while_starting(backend: Backend, handle: Handle, what: str) -> BackendError:
    """The error for a process that ended before it served: ``what`` it was, its exit code,
    why where the backend knows, and its last output."""
    state = await backend.status(handle)
    tail = (await backend.logs(handle, tail=15)).text
    why = f" ({state.reason})" if state.reason else ""
    return BackendError(
        f"{what} exited with code {state.exit_code}{why} while starting; last output:\n{tail}"
    )


class Backend(abc.ABC):
    """Where processes run. Every method is safe to call again (idempotent)."""

    name: str
    # True where processes run directly on the control plane's host, beside its files:
    # they must run as their people's own OS accounts (ProcessSpec.account).
    shares_host: bool = False
    # Where the control plane's host reaches a process's published ports.
    public_host: str = "127.0.0.1"
    # True where the backend's own scheduler places processes and binds their GPUs
    # (Slurm): Titan then checks quotas only, never picks GPUs, and learns where each
    # process landed from its handle (``landed``).
    allocates: bool = False

    @abc.abstractmethod
    async def start(self, spec: ProcessSpec, checkpoint: Checkpoint) -> Started:
        """Start ``spec`` and wait until it is ready.

        ``checkpoint`` is awaited with the handle as soon as something exists
        to clean up, so a failure later in the start can be undone by
        ``stop``. Raises BackendError if the process fails to become ready.
        """

    @abc.abstractmethod
    async def stop(self, handle: Handle) -> None:
        """Stop the process and everything it started; a no-op if it is already gone."""

    @abc.abstractmethod
    async def status(self, handle: Handle) -> ProcessState:
        """Whether the process still runs, and its exit code once known."""

    @abc.abstractmethod
    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        """The process's output from byte ``offset`` on, or its last ``tail`` lines."""

    async def line_times(self, handle: Handle) -> list[tuple[int, float]]:
        """When each line of the process's output began: ``(byte offset, epoch seconds)``
        in offset order; empty where nothing was recorded (the default)."""
        return []

    @abc.abstractmethod
    async def adopt(self) -> list[Handle]:
        """Handles of every process this backend finds running, started by any Titan run."""

    @abc.abstractmethod
    async def reserve_ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """Free ports for one process, chosen before it starts: for each name, the first
        of as many ports in a row as ``wanted`` says.

        Known in advance, they let processes that connect to it start at the
        same time (workers wait for their head). Should another server take
        one first, that start fails and is retried with new ports.
        """

    async def nodes(self) -> list[Inventory]:
        """The nodes this backend runs processes on, as it sees them now (default: this
        machine, with the GPUs NVML sees)."""
        if self._this_machine is None:
            self._this_machine = await asyncio.to_thread(local_inventory)
        return [self._this_machine]

    _this_machine: Inventory | None = None

    def landed(self, handle: Handle) -> str | None:
        """Where the control plane and the resource's other processes reach the started
        process of ``handle``, when only its start decided it (``allocates``); None where
        it was known before (``public_host``, ``peer_host``)."""
        return None

    async def finish_start(self, handle: Handle, checkpoint: Checkpoint) -> Handle:
        """Wait until a process ``start`` reported ``Queued`` serves; its handle then
        (checkpointed again if it changed). Raises BackendError if it ends first."""
        raise BackendError(f"the {self.name} backend queues no process")

    def peer_host(self, name: str) -> str:
        """Where the other processes of a resource reach its process ``name``."""
        return self.public_host

    async def forget(self, resource_id: str) -> None:  # noqa: B027 - optional hook
        """Remove what the backend kept for a deleted resource (networks, home volumes)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (not the processes); called on shutdown."""
