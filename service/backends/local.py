"""The local backend: each process is a subprocess of this machine in its own session.

Every process gets a folder ``<data_dir>/processes/<resource id>/<name>-<ms>/``
holding ``handle.json`` (written as soon as it is spawned), ``output.log`` and,
once it ends, ``exit.json``. A process whose handle was never written (the
control plane died in between) is still found by ``adopt``, through the exit
file named in its environment. Stopping signals the whole process group, so no
child a process started is left behind.
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
from typing import Any

import psutil

from service.backends.base import (
    Backend,
    Checkpoint,
    Handle,
    LogChunk,
    ProcessSpec,
    ProcessState,
    Started,
    dask_scheme,
    secrets_environment,
)
from service.backends.ports import free_port_outside_ephemeral_range
from service.errors import BackendError

log = logging.getLogger(__name__)
# Variables of the control plane that must not leak into the processes it starts.
_PRIVATE_PREFIXES = ("TITAN_", "DASK_", "JUPYTER_")
SECRETS = "secrets"  # the process's secret files (0700 folder, 0600 files), gone at stop


def _write_secrets(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)
    for name, value in files.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(value)
    return folder


class LocalBackend(Backend):
    """Runs processes as local subprocesses; the embedded default."""

    name = "local"

    def __init__(self, root: Path, start_timeout: float = 120.0, stop_timeout: float = 10.0):
        self.root = root
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    async def start(self, spec: ProcessSpec, checkpoint: Checkpoint) -> Started:
        """Spawn the process, checkpoint its handle, then wait until it serves."""
        folder = self.root / spec.resource_id / f"{spec.name}-{int(time.time() * 1000)}"
        handle = await asyncio.to_thread(self._spawn, spec, folder)
        await checkpoint(handle)
        endpoints = await self._wait_ready(spec, handle)
        log.info("started %s of %s (pid %s)", spec.name, spec.resource_id, handle["pid"])
        return Started(handle=handle, endpoints=endpoints)

    def _spawn(self, spec: ProcessSpec, folder: Path) -> Handle:
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
        env.update(spec.env)
        env["TITAN_EXIT_FILE"] = str(folder / "exit.json")
        env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpus)
        if spec.output_dir:
            Path(spec.output_dir).mkdir(parents=True, exist_ok=True)
            env["TITAN_OUTPUT_DIR"] = spec.output_dir
        if spec.start_script:
            env["TITAN_START_SCRIPT"] = spec.start_script
        if spec.role == "jupyter":
            env["JUPYTER_RUNTIME_DIR"] = str(folder / "runtime")
        if spec.secret_files:
            written = _write_secrets(folder / SECRETS, spec.secret_files)
            env.update(secrets_environment(spec, str(written)))
        args = list(spec.args)
        if spec.role == "scheduler":
            args += ["--scheduler-file", str(folder / "scheduler.json")]
        command = [sys.executable, "-m", "workers.entrypoint", spec.role, *args]
        if spec.working_directory:
            cwd = Path(spec.working_directory).expanduser()
        elif spec.role == "jupyter":  # notebooks outlive restarts of the workspace
            cwd = self.root.parent / "home" / spec.resource_id
            cwd.mkdir(parents=True, exist_ok=True)
        else:
            cwd = folder
        if not cwd.is_dir():
            raise BackendError(f"working_directory {str(cwd)!r} does not exist on this machine")
        for shared in spec.folders:
            # No mounts without root: the folder by variable, and a link where the process runs.
            env[f"TITAN_FOLDER_{shared.name.upper().replace('-', '_')}"] = shared.host_path
            if not spec.working_directory:
                link = cwd / Path(shared.path).name
                if not link.exists() and not link.is_symlink():
                    link.symlink_to(shared.host_path, target_is_directory=True)
        with open(folder / "output.log", "ab") as output:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        self._children[child.pid] = child
        handle: Handle = {
            "backend": self.name,
            "pid": child.pid,
            "create_time": psutil.Process(child.pid).create_time(),
            "dir": str(folder),
            "resource_id": spec.resource_id,
            "name": spec.name,
            "role": spec.role,
        }
        (folder / "handle.json").write_text(json.dumps(handle))
        return handle

    async def _wait_ready(self, spec: ProcessSpec, handle: Handle) -> dict[str, str]:
        folder = Path(handle["dir"])
        deadline = time.monotonic() + self.start_timeout
        while True:
            endpoints = await asyncio.to_thread(_ready_endpoints, spec.role, folder)
            if endpoints is not None:
                return endpoints
            state = await self.status(handle)
            if not state.running:
                tail = (await self.logs(handle, tail=15)).text
                raise BackendError(
                    f"{spec.name} exited with code {state.exit_code} while starting; "
                    f"last output:\n{tail}"
                )
            if time.monotonic() > deadline:
                raise BackendError(f"{spec.name} was not ready after {self.start_timeout:.0f}s")
            await asyncio.sleep(0.025)  # readiness shows in a file: poll often

    async def reserve_endpoints(self, spec: ProcessSpec) -> tuple[list[str], dict[str, str]]:
        """A scheduler gets a free port chosen now, outside the kernel's ephemeral range.

        Outgoing connections never take such a port, so it stays free until the
        scheduler binds it; should another server take it first, the start fails
        and is retried with a new port.
        """
        if spec.role != "scheduler":
            return [], {}
        port = await asyncio.to_thread(free_port_outside_ephemeral_range)
        return ["--port", str(port)], {"scheduler": f"{dask_scheme(spec)}://127.0.0.1:{port}"}

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
        await asyncio.to_thread(shutil.rmtree, Path(handle["dir"]) / SECRETS, True)

    async def status(self, handle: Handle) -> ProcessState:
        """Running, or exited with the code from the child or ``exit.json``."""
        pid = int(handle["pid"])
        child = self._children.get(pid)
        if child is not None and child.poll() is None:
            return ProcessState(running=True)
        if child is None and _alive(handle):
            return ProcessState(running=True)
        code = _recorded_exit_code(Path(handle["dir"]))
        if code is None and child is not None:
            code = child.returncode
        return ProcessState(running=False, exit_code=code)

    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        """The process's combined stdout/stderr."""
        return await asyncio.to_thread(_read_log, Path(handle["dir"]) / "output.log", tail, offset)

    async def adopt(self) -> list[Handle]:
        """Handles of processes under the data directory that are still running."""
        return await asyncio.to_thread(self._scan)

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
        prefix = str(self.root) + os.sep
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                exit_file = process.environ().get("TITAN_EXIT_FILE", "")
                if not exit_file.startswith(prefix) or os.getsid(process.pid) != process.pid:
                    continue
                created = process.create_time()
            except (psutil.Error, OSError):
                continue
            folder = Path(exit_file).parent
            cmdline = process.info["cmdline"] or []
            role = next((a for a in cmdline if a in ("scheduler", "worker", "jupyter", "job")), "")
            found.append(
                {
                    "backend": self.name,
                    "pid": process.pid,
                    "create_time": created,
                    "dir": str(folder),
                    "resource_id": folder.parent.name,
                    "name": folder.name.rsplit("-", 1)[0],
                    "role": role,
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


def _recorded_exit_code(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / "exit.json").read_text())["exit_code"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _ready_endpoints(role: str, folder: Path) -> dict[str, str] | None:
    """The endpoints a ready process serves, or None while it is still starting."""
    if role == "scheduler":
        info = _read_json(folder / "scheduler.json")
        if info is None:
            return None
        endpoints = {"scheduler": str(info["address"])}
        dashboard = info.get("services", {}).get("dashboard")
        if dashboard:
            host = str(info["address"]).split("://", 1)[-1].rsplit(":", 1)[0]
            endpoints["dashboard"] = f"http://{host}:{dashboard}"  # served through /dashboards
        return endpoints
    if role == "jupyter":
        for path in (folder / "runtime").glob("jpserver-*.json"):
            info = _read_json(path)
            if info is not None:
                return {"jupyter": str(info["url"])}
        return None
    return {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent or half-written: not ready yet


def _read_log(path: Path, tail: int | None, offset: int) -> LogChunk:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            if tail is not None:
                start = max(0, size - 64 * 1024 * max(1, tail // 100 + 1))
                stream.seek(start)
                lines = stream.read().decode(errors="replace").splitlines()[-tail:]
                return LogChunk("\n".join(lines) + ("\n" if lines else ""), size)
            stream.seek(min(offset, size))
            return LogChunk(stream.read().decode(errors="replace"), size)
    except FileNotFoundError:
        return LogChunk("", 0)
