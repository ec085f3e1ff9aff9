"""The local backend: each process is a subprocess of this machine in its own session.

Two folders per process. The control plane's own, private one,
``<data_dir>/processes/<resource id>/<name>-<ms>/``, holds ``handle.json``
(written as soon as it is spawned) and ``output.log`` (written through the file
the process inherits). The process's run folder belongs to the OS account it
runs as (see :mod:`service.backends.run_folders`). A process whose handle was
never written (the control plane died in between) is still found by ``adopt``,
through the exit file named in its environment. Stopping signals the whole
process group, so no child a process started is left behind. Every process
shares the CPU through :class:`~service.backends.cpu_share.UserCpuShare`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from service.backends.base import (
    Backend,
    Checkpoint,
    Handle,
    LogChunk,
    ProcessSpec,
    ProcessState,
    Started,
    ended_while_starting,
    entrypoint_args,
)
from service.backends.cpu_share import UserCpuShare
from service.backends.log_times import read_line_times
from service.backends.ports import free_ports
from service.backends.run_folders import (
    LINE_TIMES,
    Prepared,
    RunFolders,
    find_ready_line,
    read_log,
    recorded_exit_code,
    remove_secrets,
    run_folder,
)
from service.errors import BackendError

log = logging.getLogger(__name__)
HOST = "127.0.0.1"  # every server of a local process listens on loopback only


class LocalBackend(Backend):
    """Runs processes as local subprocesses; the embedded default."""

    name = "local"
    shares_host = True

    def __init__(
        self,
        root: Path,
        start_timeout: float = 120.0,
        stop_timeout: float = 10.0,
        *,
        user_root: Path | None = None,
        pass_environment: list[str] | None = None,
        cpu_shares: int = 256,
        keep_files: bool = False,
    ):
        self.root = root
        self.user_root = user_root or root.parent.with_name(root.parent.name + "-users")
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.folders = RunFolders(self.user_root, pass_environment)
        self.cpu = UserCpuShare(cpu_shares)
        self.keep_files = keep_files
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    async def start(self, spec: ProcessSpec, checkpoint: Checkpoint) -> Started:
        """Spawn the process, checkpoint its handle, then wait until it serves."""
        leaf = f"{spec.name}-{int(time.time() * 1000)}"
        handle = await asyncio.to_thread(self._spawn, spec, leaf)
        await checkpoint(handle)
        await self._wait_ready(spec, handle)
        log.info("started %s of %s (pid %s)", spec.name, spec.resource_id, handle["pid"])
        return Started(handle=handle)

    def _spawn(self, spec: ProcessSpec, leaf: str) -> Handle:
        folder = self.root / spec.resource_id / leaf
        folder.mkdir(parents=True, exist_ok=True)
        prepared = self.folders.prepare(spec, leaf)
        try:
            return self._launch(spec, prepared, folder)
        except BaseException:
            remove_secrets({"run": str(prepared.run)})  # nothing secret outlives a failure
            raise

    def _launch(self, spec: ProcessSpec, prepared: Prepared, folder: Path) -> Handle:
        env = {**prepared.env, "CUDA_VISIBLE_DEVICES": ",".join(spec.gpus)}
        command = [sys.executable, "-m", "workers.entrypoint", *entrypoint_args(spec, HOST)]
        account = prepared.account
        with open(folder / "output.log", "ab") as output:
            try:
                child = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=prepared.cwd,
                    env=env,
                    start_new_session=True,
                    umask=0o077,
                    user=account.uid if account else None,
                    group=account.gid if account else None,
                    extra_groups=[] if account else None,
                )
            except (OSError, ValueError) as exc:
                raise BackendError(f"{spec.name} could not start: {exc}") from None
        self.cpu.confine(child.pid)
        self._children[child.pid] = child
        handle: Handle = {
            "backend": self.name,
            "pid": child.pid,
            "create_time": psutil.Process(child.pid).create_time(),
            "dir": str(folder),
            "run": str(prepared.run),
            "scratch": prepared.scratch,
            "resource_id": spec.resource_id,
            "name": spec.name,
            "role": spec.role,
        }
        (folder / "handle.json").write_text(json.dumps(handle))
        return handle

    async def _wait_ready(self, spec: ProcessSpec, handle: Handle) -> None:
        """Until the entrypoint says the process serves (``READY_MARKER`` in its output)."""
        log_file = Path(handle["dir"]) / "output.log"
        deadline = time.monotonic() + self.start_timeout
        offset = 0
        while True:
            found, offset = await asyncio.to_thread(find_ready_line, log_file, offset)
            if found:
                return
            if not (await self.status(handle)).running:
                raise await ended_while_starting(self, handle, spec.name)
            if time.monotonic() > deadline:
                raise BackendError(f"{spec.name} was not ready after {self.start_timeout:.0f}s")
            await asyncio.sleep(0.025)  # readiness shows in a file: poll often

    async def reserve_ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """Ports free on loopback now, outside the kernel's ephemeral range (outgoing
        connections never take them, so they stay free until the process binds them)."""
        return await asyncio.to_thread(free_ports, HOST, wanted)

    async def stop(self, handle: Handle) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period; no-op if gone."""
        pid = int(handle["pid"])
        if _alive(handle):
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while _alive(handle) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        # Always sweep the group: children may outlive a leader that exited.
        _signal_group(pid, signal.SIGKILL)
        await asyncio.to_thread(self._reap, pid)  # waiting on the child blocks
        await asyncio.to_thread(remove_secrets, handle)
        if handle.get("scratch"):
            await asyncio.to_thread(shutil.rmtree, handle["scratch"], True)

    async def status(self, handle: Handle) -> ProcessState:
        """Running, or exited with the code from the child or ``exit.json``."""
        pid = int(handle["pid"])
        child = self._children.get(pid)
        if child is not None and child.poll() is None:
            return ProcessState(running=True)
        if child is None and _alive(handle):
            return ProcessState(running=True)
        await asyncio.to_thread(remove_secrets, handle)  # nothing secret outlives it
        code = recorded_exit_code(run_folder(handle))
        if code is None and child is not None:
            code = child.returncode
        return ProcessState(running=False, exit_code=code)

    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        """The process's combined stdout/stderr."""
        return await asyncio.to_thread(read_log, Path(handle["dir"]) / "output.log", tail, offset)

    async def line_times(self, handle: Handle) -> list[tuple[int, float]]:
        """When each output line began, as the entrypoint recorded it."""
        return await asyncio.to_thread(read_line_times, run_folder(handle) / LINE_TIMES)

    async def adopt(self) -> list[Handle]:
        """Handles of processes under the data directory that are still running."""
        return await asyncio.to_thread(self._scan)

    async def forget(self, resource_id: str) -> None:
        """Remove what a deleted resource left: its logs, run folders (secrets with them)
        and workspace home; kept only where the operator asked (TITAN_KEEP_DELETED_FILES)."""
        if self.keep_files:
            return
        await asyncio.to_thread(shutil.rmtree, self.root / resource_id, True)
        await asyncio.to_thread(self.folders.forget, resource_id)

    def _scan(self) -> list[Handle]:
        handles = []
        for path in self.root.glob("*/*/handle.json"):
            with contextlib.suppress(OSError, ValueError):
                handle = json.loads(path.read_text())
                if _alive(handle):
                    handles.append(handle)
        known = {int(h["pid"]) for h in handles}
        return handles + [h for h in self._unrecorded() if int(h["pid"]) not in known]

    def _unrecorded(self) -> list[Handle]:
        """Processes started under ``root`` whose handle was never written: a control
        plane killed between spawning one and writing its ``handle.json``. Found by the
        exit file in their environment; only session leaders (the entrypoints)."""
        found = []
        prefix = str(self.user_root / "run") + os.sep
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                environ = process.environ()
                exit_file = environ.get("TITAN_EXIT_FILE", "")
                if not exit_file.startswith(prefix) or os.getsid(process.pid) != process.pid:
                    continue
                created = process.create_time()
            except (psutil.Error, OSError):
                continue
            run = Path(exit_file).parent
            folder = self.root / run.parent.name / run.name
            found.append(
                {
                    "backend": self.name,
                    "pid": process.pid,
                    "create_time": created,
                    "dir": str(folder),
                    "run": str(run),
                    "scratch": environ.get("TITAN_SCRATCH_DIR", ""),
                    "resource_id": folder.parent.name,
                    "name": folder.name.rsplit("-", 1)[0],
                    "role": "",
                }
            )
        return found

    def _reap(self, pid: int) -> None:
        child = self._children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)


def _alive(handle: Handle) -> bool:
    """True if the handle's pid runs and is the same process (not a reused pid)."""
    try:
        process = psutil.Process(int(handle["pid"]))
        if abs(process.create_time() - float(handle["create_time"])) > 0.01:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
