"""The Slurm backend: each process is one Slurm batch job, placed by Slurm.

Slurm decides where a process runs and which GPUs it gets (``--gres=gpu:N``;
Titan checks quotas only, see ``Backend.allocates``), so a process's address
is known once its job runs: the handle then names its node, the node's
address and the GPUs Slurm bound. A job Slurm keeps waiting is reported
``Queued`` with Slurm's reason (``Resources``, ``Priority``), and its start is
seen through once it runs (``finish_start``).

The compute nodes share this machine's filesystem (the operator's shared
filesystem, see the README's "Running on a Slurm cluster"): Titan's Python
environment at the same path, and the users' folders (run folders, homes,
outputs; :mod:`service.backends.run_folders`). Each job is submitted by
``sbatch`` as the OS account its person maps to (``runuser -u ACCOUNT``), so
it runs as that account: files, fair-share and accounting are per person. Its
batch script holds no secret: the environment goes in a file of its run
folder, readable by that account only, which the script reads and deletes.
Output goes to ``output.log`` in the run folder; readiness is the
entrypoint's ready line there. Jobs carry the name ``<prefix>-<resource>-<name>``
and a comment with the resource, process and run folder, by which a restarted
control plane adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import shlex
import shutil
import time
from pathlib import Path

from service.backends import slurm_commands as slurm
from service.backends.base import (
    Backend,
    Checkpoint,
    Handle,
    LogChunk,
    ProcessSpec,
    ProcessState,
    Queued,
    Started,
    ended_while_starting,
    entrypoint_args,
)
from service.backends.log_times import read_line_times
from service.backends.nodes import Inventory
from service.backends.ports import free_ports
from service.backends.run_folders import (
    LINE_TIMES,
    Prepared,
    RunFolders,
    find_ready_line,
    give,
    read_log,
    recorded_exit_code,
    remove_secrets,
    run_folder,
)
from service.errors import BackendError

log = logging.getLogger(__name__)
ENVIRONMENT = "environment"  # the job's variables, read and deleted by its batch script
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# The node's own address, as Slurm knows it: where the process's servers listen.
NODE_ADDRESS = (
    'host=$(scontrol show node -o "$SLURMD_NODENAME" | sed -n "s/.* NodeAddr=\\([^ ]*\\).*/\\1/p")'
)


class SlurmBackend(Backend):
    """Runs each process as a Slurm batch job on the cluster's nodes."""

    name = "slurm"
    shares_host = True  # jobs share this filesystem: they run as their people's accounts
    allocates = True

    def __init__(
        self,
        root: Path,
        *,
        user_root: Path,
        python: str,
        prefix: str = "titan",
        defaults: dict[str, str] | None = None,
        default_memory_bytes: int = 1024**3,
        start_timeout: float = 120.0,
        stop_timeout: float = 10.0,
        queue_wait: float = 5.0,
        pass_environment: list[str] | None = None,
        keep_files: bool = False,
    ) -> None:
        self.root = root
        self.folders = RunFolders(user_root, pass_environment)
        self.python = python
        self.prefix = prefix
        self.defaults = dict(defaults or {})  # partition, account, qos, time_limit
        self.default_memory_bytes = default_memory_bytes
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.queue_wait = queue_wait
        self.keep_files = keep_files
        self._addresses: dict[str, str] = {}

    # -- starting -------------------------------------------------------------------------

    async def start(self, spec: ProcessSpec, checkpoint: Checkpoint) -> Started:
        """Submit the job, checkpoint its handle, then wait until it serves; ``Queued``
        (with Slurm's reason) if Slurm still holds it after ``queue_wait`` seconds."""
        leaf = f"{spec.name}-{int(time.time() * 1000)}"
        folder = self.root / spec.resource_id / leaf
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        prepared = await asyncio.to_thread(self.folders.prepare, spec, leaf)
        try:
            script = await asyncio.to_thread(self._write_script, spec, prepared)
            job_id = await self._submit(spec, prepared, leaf, script)
        except BaseException:
            await asyncio.to_thread(remove_secrets, {"run": str(prepared.run)})
            raise
        handle: Handle = {
            "backend": self.name,
            "job_id": job_id,
            "dir": str(folder),
            "run": str(prepared.run),
            "scratch": prepared.scratch,
            "resource_id": spec.resource_id,
            "name": spec.name,
            "role": spec.role,
        }
        await asyncio.to_thread(_save, handle)
        await checkpoint(handle)
        handle = await self._until_ready(handle, checkpoint, self.queue_wait)
        log.info(
            "started %s of %s (Slurm job %s on %s)",
            spec.name,
            spec.resource_id,
            job_id,
            handle.get("node"),
        )
        return Started(handle=handle)

    async def finish_start(self, handle: Handle, checkpoint: Checkpoint) -> Handle:
        """Wait until a job that was queued serves; its handle, naming where it landed."""
        return await self._until_ready(handle, checkpoint, None)

    def _write_script(self, spec: ProcessSpec, prepared: Prepared) -> Path:
        """The job's environment file (its account's only) and its batch script."""
        env = dict(prepared.env)
        if not spec.gpu_count:  # with GPUs asked for, Slurm sets the ones it bound
            env["CUDA_VISIBLE_DEVICES"] = ""
        bad = sorted(name for name in env if not _NAME.match(name))
        if bad:
            raise BackendError(f"{spec.name}: environment variable names {bad} cannot be set")
        variables = prepared.run / ENVIRONMENT
        lines = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
        _write_private(variables, lines, prepared)
        args = entrypoint_args(spec, "\0host")
        command = " ".join('"$host"' if arg == "\0host" else shlex.quote(arg) for arg in args)
        script = prepared.run / "job.sh"
        _write_private(
            script,
            "#!/bin/sh\n"
            f"# Titan: process {spec.name} of resource {spec.resource_id}\n"
            "umask 077\n"
            f". {shlex.quote(str(variables))} && rm -f {shlex.quote(str(variables))}\n"
            f"{NODE_ADDRESS}\n"
            f"exec {shlex.quote(self.python)} -m workers.entrypoint {command}\n",
            prepared,
        )
        return script

    async def _submit(self, spec: ProcessSpec, prepared: Prepared, leaf: str, script: Path) -> str:
        """``sbatch`` the script as the process's account; the job id."""
        options = {**self.defaults, **spec.scheduling}
        memory = spec.memory_bytes or self.default_memory_bytes
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={self.prefix}-{spec.resource_id[:8]}-{spec.name}",
            f"--comment=titan {spec.resource_id} {spec.name} {leaf}",
            f"--output={prepared.run / 'output.log'}",
            f"--chdir={prepared.cwd}",
            "--no-requeue",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={max(1, math.ceil(spec.cpu))}",
            f"--mem={max(1, math.ceil(memory / 1024**2))}M",
        ]
        if spec.gpu_count:
            argv.append(f"--gres=gpu:{math.ceil(spec.gpu_count)}")  # Slurm binds whole GPUs
        for option, flag in (
            ("partition", "-p"),
            ("account", "-A"),
            ("qos", "--qos"),
            ("time_limit", "-t"),
        ):
            if options.get(option):
                argv += [flag, options[option]]
        account = prepared.account.name if prepared.account else None
        try:
            out = await slurm.call(*argv, str(script), user=account)
        except slurm.SlurmError as exc:
            raise BackendError(f"{spec.name}: Slurm refused the job: {exc}") from None
        return out.strip().split(";")[0]

    async def _until_ready(
        self, handle: Handle, checkpoint: Checkpoint, queue_wait: float | None
    ) -> Handle:
        """Until the job runs and its entrypoint says it serves; the handle then.

        While Slurm holds the job: ``Queued`` after ``queue_wait`` seconds (never
        for None). Raises BackendError if the job ends or is not ready in time.
        """
        began = time.monotonic()
        deadline: float | None = None
        log_file = run_folder(handle) / "output.log"
        offset = 0
        while True:
            job = await slurm.job(handle["job_id"])
            if job is not None and job.waiting:
                if queue_wait is not None and time.monotonic() - began > queue_wait:
                    raise Queued(f"{job.reason} (Slurm job {handle['job_id']})")
                await asyncio.sleep(0.05)  # Slurm starts a job within a second when it can
                continue
            if job is not None and job.node and "node" not in handle:
                handle = await self._landed_on(handle, job, checkpoint)
            ended = job is None or not job.running
            if deadline is None:
                deadline = time.monotonic() + self.start_timeout
            for _ in range(1 if ended else 10):  # the ready line is in a file: look often
                found, offset = await asyncio.to_thread(find_ready_line, log_file, offset)
                if found:  # it served, even if it has ended since: that is its status's news
                    return handle
                if not ended:
                    await asyncio.sleep(0.05)
            if ended:
                what = f"{handle['name']} (Slurm job {handle['job_id']})"
                raise await ended_while_starting(self, handle, what)
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{handle['name']} was not ready {self.start_timeout:.0f}s after its "
                    f"Slurm job {handle['job_id']} started"
                )

    async def _landed_on(self, handle: Handle, job: slurm.Job, checkpoint: Checkpoint) -> Handle:
        """``handle`` naming the node Slurm runs the job on, its address and the GPUs Slurm
        bound there; saved and checkpointed."""
        handle = {
            **handle,
            "node": job.node,
            "host": await self._address(job.node),
            "gpus": _bound(job.node, job.gpus),
        }
        await asyncio.to_thread(_save, handle)
        await checkpoint(handle)
        return handle

    async def _address(self, node: str) -> str:
        """The address of ``node`` (Slurm's NodeAddr)."""
        if node not in self._addresses:
            for inventory in await self.nodes():
                self._addresses[inventory.name] = inventory.address
        return self._addresses.get(node, node)

    async def reserve_ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """Ports outside the ephemeral range, chosen at random: the node is not known yet
        (should one be taken there, that start fails and is retried with others)."""
        return free_ports("0.0.0.0", wanted, probe=False)

    def landed(self, handle: Handle) -> str | None:
        """The address of the node the job runs on."""
        host = handle.get("host")
        return str(host) if host else None

    # -- observing and stopping -----------------------------------------------------------

    async def status(self, handle: Handle) -> ProcessState:
        """Waiting (Slurm's reason), running, or ended with the entrypoint's exit code
        (Slurm's where the entrypoint could not write one) and why, in Slurm's words."""
        job = await slurm.job(handle["job_id"])
        if job is not None and job.waiting:
            return ProcessState(running=False, waiting=job.reason)
        if job is not None and (job.running or job.state == "COMPLETING"):
            # Still ending (COMPLETING): once it has, Slurm says how (cancelled, timed out).
            return ProcessState(running=True)
        await asyncio.to_thread(remove_secrets, handle)  # nothing secret outlives it
        code = await asyncio.to_thread(recorded_exit_code, run_folder(handle))
        if job is None:
            return ProcessState(running=False, exit_code=code)
        if code is None:
            code = 128 + job.signal if job.signal else job.exit_code
        return ProcessState(running=False, exit_code=code, reason=slurm.ENDINGS.get(job.state, ""))

    async def stop(self, handle: Handle) -> None:
        """``scancel`` the job and wait until it has ended; a no-op once it has."""
        deadline = time.monotonic() + self.stop_timeout + 15  # Slurm's KillWait on top
        with contextlib.suppress(slurm.SlurmError):  # already ended and forgotten
            await slurm.call("scancel", handle["job_id"])
        while time.monotonic() < deadline:
            job = await slurm.job(handle["job_id"])
            if job is None or not (job.waiting or job.running or job.state == "COMPLETING"):
                break
            await asyncio.sleep(0.2)
        else:
            log.warning(
                "Slurm job %s had not ended %ss after scancel",
                handle["job_id"],
                self.stop_timeout + 15,
            )
        await asyncio.to_thread(remove_secrets, handle)
        # A job cancelled before it ran never read (and deleted) its variables.
        await asyncio.to_thread((run_folder(handle) / ENVIRONMENT).unlink, True)
        if handle.get("scratch"):
            await asyncio.to_thread(shutil.rmtree, handle["scratch"], True)

    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        """The job's output file (standard output and error)."""
        return await asyncio.to_thread(read_log, run_folder(handle) / "output.log", tail, offset)

    async def line_times(self, handle: Handle) -> list[tuple[int, float]]:
        """When each output line began, as the entrypoint recorded it."""
        return await asyncio.to_thread(read_line_times, run_folder(handle) / LINE_TIMES)

    async def adopt(self) -> list[Handle]:
        """Handles of every job of this Titan not yet ended, found by name and comment."""
        handles = []
        for job_id, _state, comment in await slurm.jobs_named(f"{self.prefix}-"):
            parts = comment.split(" ")
            if len(parts) != 4 or parts[0] != "titan":
                continue
            _, resource_id, name, leaf = parts
            folder = self.root / resource_id / leaf
            saved = await asyncio.to_thread(_load, folder / "handle.json")
            if saved.get("job_id") == job_id:
                handles.append(saved)
                continue
            handles.append(
                {
                    "backend": self.name,
                    "job_id": job_id,
                    "dir": str(folder),
                    "run": str(self.folders.user_root / "run" / resource_id / leaf),
                    "resource_id": resource_id,
                    "name": name,
                    "role": "",
                }
            )
        return handles

    async def nodes(self) -> list[Inventory]:
        """Every node of the Slurm cluster, with its state (drained, down...) as Slurm says."""
        found = await slurm.nodes()
        self._addresses = {node.name: node.address for node in found}
        return found

    async def forget(self, resource_id: str) -> None:
        """Remove what a deleted resource left: its handles, run folders and home."""
        if self.keep_files:
            return
        await asyncio.to_thread(shutil.rmtree, self.root / resource_id, True)
        await asyncio.to_thread(self.folders.forget, resource_id)


def _bound(node: str, indices: str) -> list[str]:
    """The GPUs Slurm bound (``0-1,3`` on ``node``) as its nodes name them (``n1/gpu0``)."""
    found: list[str] = []
    for part in filter(None, indices.split(",")):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            found += [f"{node}/gpu{index}" for index in range(int(low), int(high or low) + 1)]
    return found


def _write_private(path: Path, text: str, prepared: Prepared) -> None:
    """``text`` into ``path``, readable by the process's account only."""
    path.unlink(missing_ok=True)
    with open(path, "x") as stream:
        path.chmod(0o600)
        stream.write(text)
    give(path, prepared.account)


def _save(handle: Handle) -> None:
    (Path(handle["dir"]) / "handle.json").write_text(json.dumps(handle))


def _load(path: Path) -> Handle:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
