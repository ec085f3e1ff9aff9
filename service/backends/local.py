"""The local backend: each process is a subprocess of this machine in its own session.

Two folders per process. The control plane's own, private one,
``<data_dir>/processes/<resource id>/<name>-<ms>/``, holds ``handle.json``
(written as soon as it is spawned) and ``output.log`` (written through the file
the process inherits). The process's run folder,
``<users_dir>/run/<resource id>/<name>-<ms>/``, belongs to the OS account the
process runs as (``ProcessSpec.account``, or the control plane's own for
admins): its default working directory, ``exit.json`` once it ends, what it
says when it is ready, and its secret files (removed as soon as it is seen
to have ended, and at every stop). A process whose handle was never written
(the control plane died in between) is still found by ``adopt``, through the
exit file named in its environment. Stopping signals the whole process
group, so no child a process started is left behind. Every process inherits
only an allowlist of the control plane's environment and shares the CPU
through :class:`~service.backends.cpu_share.UserCpuShare`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
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
    entrypoint_args,
    inherited_environment,
    process_environment,
)
from service.backends.cpu_share import UserCpuShare
from service.backends.ports import free_ports
from service.core.accounts import Account, lookup
from service.errors import BackendError, TitanError
from workers.entrypoint import READY_MARKER

log = logging.getLogger(__name__)
SECRETS = "secrets"  # the process's secret files (0700 folder, 0600 files), gone at stop
HOST = "127.0.0.1"  # every server of a local process listens on loopback only


def _write_secrets(folder: Path, files: dict[str, str], account: Account | None) -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)
    _give(folder, account)
    for name, value in files.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(value)
        _give(folder / name, account)
    return folder


def _give(path: Path, account: Account | None) -> None:
    """Make ``path`` its process's account's own (no-op for the control plane's account)."""
    if account is not None:
        os.chown(path, account.uid, account.gid)


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
        self.pass_environment = list(pass_environment or [])
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
        account = self._account(spec)
        folder = self.root / spec.resource_id / leaf
        folder.mkdir(parents=True, exist_ok=True)
        run = self._passage(self.user_root / "run" / spec.resource_id) / leaf
        run.mkdir(mode=0o700, exist_ok=True)
        _give(run, account)
        try:
            return self._launch(spec, account, folder, run)
        except BaseException:
            shutil.rmtree(run / SECRETS, ignore_errors=True)  # nothing secret outlives a failure
            raise

    def _account(self, spec: ProcessSpec) -> Account | None:
        if spec.account is None:
            return None
        if os.geteuid() != 0:
            raise BackendError(
                f"{spec.name}: running processes as the OS account {spec.account!r} needs "
                "the control plane to run as root (TITAN_OS_ACCOUNTS)"
            )
        try:
            return lookup(spec.account)
        except TitanError as exc:
            raise BackendError(f"{spec.name}: {exc}") from None

    def _launch(
        self, spec: ProcessSpec, account: Account | None, folder: Path, run: Path
    ) -> Handle:
        cwd, home = self._working_directory(spec, account, run)
        env = inherited_environment(self.pass_environment)
        env.update(process_environment(spec, str(run / SECRETS)))
        env["HOME"] = str(home)
        scratch = run / "tmp"  # not the shared /tmp: programs' scratch space
        scratch.mkdir(mode=0o700, exist_ok=True)
        _give(scratch, account)
        env["TMPDIR"] = str(scratch)
        if account is not None:
            env["USER"] = env["LOGNAME"] = account.name
        env["TITAN_EXIT_FILE"] = str(run / "exit.json")
        # A short private folder if the program asks for one, removed at stop.
        scratch = Path("/tmp") / f"titan-{secrets.token_hex(6)}"
        env["TITAN_SCRATCH_DIR"] = str(scratch)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpus)
        if spec.output_dir:
            results = Path(spec.output_dir)
            self._passage(results.parent)
            results.mkdir(mode=0o700, exist_ok=True)
            _give(results, account)
            env["TITAN_OUTPUT_DIR"] = spec.output_dir
        if spec.start_script:
            env["TITAN_START_SCRIPT"] = spec.start_script
        command = [sys.executable, "-m", "workers.entrypoint", *entrypoint_args(spec, HOST)]
        for shared in spec.folders:
            self._share(shared.host_path, account)
            # No mounts without root: the folder by variable, and a link where the process runs.
            env[f"TITAN_FOLDER_{shared.name.upper().replace('-', '_')}"] = shared.host_path
            if not spec.working_directory:
                link = cwd / Path(shared.path).name
                if not link.exists() and not link.is_symlink():
                    link.symlink_to(shared.host_path, target_is_directory=True)
        if spec.secret_files:  # last: nothing above may fail with them on disk
            _write_secrets(run / SECRETS, spec.secret_files, account)
        with open(folder / "output.log", "ab") as output:
            try:
                child = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
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
            "run": str(run),
            "scratch": str(scratch),
            "resource_id": spec.resource_id,
            "name": spec.name,
            "role": spec.role,
        }
        (folder / "handle.json").write_text(json.dumps(handle))
        return handle

    def _working_directory(
        self, spec: ProcessSpec, account: Account | None, run: Path
    ) -> tuple[Path, Path]:
        """Where the process starts, and its HOME."""
        if spec.home:  # notebooks outlive restarts of the workspace
            home = self._passage(self.user_root / "home") / spec.resource_id
            home.mkdir(mode=0o700, exist_ok=True)
            _give(home, account)
        else:
            home = run
        if not spec.working_directory:
            return home, home
        cwd = Path(spec.working_directory).expanduser()
        if not cwd.is_dir():
            raise BackendError(f"working_directory {str(cwd)!r} does not exist on this machine")
        return cwd, home

    def _passage(self, folder: Path) -> Path:
        """``folder`` made with every folder between it and ``user_root``: passable (0711)
        by the accounts processes run as, listable by none of them."""
        folder.mkdir(parents=True, exist_ok=True)
        for level in (folder, *folder.parents):
            if not level.is_relative_to(self.user_root):
                break
            level.chmod(0o711)
        return folder

    def _share(self, host_path: str, account: Account | None) -> None:
        """Let ``account`` use a shared folder. Several accounts may (a group's folder), so
        it is open to every account that knows its path (see the README's Security)."""
        if account is None:
            return
        path = Path(host_path)
        self._passage(path.parent)
        path.chmod(0o777)

    async def _wait_ready(self, spec: ProcessSpec, handle: Handle) -> None:
        """Until the entrypoint says the process serves (``READY_MARKER`` in its output)."""
        log_file = Path(handle["dir"]) / "output.log"
        deadline = time.monotonic() + self.start_timeout
        offset = 0
        while True:
            found, offset = await asyncio.to_thread(_find_marker, log_file, offset)
            if found:
                return
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
        await asyncio.to_thread(_remove_secrets, handle)
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
        await asyncio.to_thread(_remove_secrets, handle)  # nothing secret outlives it
        code = _recorded_exit_code(_run_folder(handle))
        if code is None and child is not None:
            code = child.returncode
        return ProcessState(running=False, exit_code=code)

    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        """The process's combined stdout/stderr."""
        return await asyncio.to_thread(_read_log, Path(handle["dir"]) / "output.log", tail, offset)

    async def adopt(self) -> list[Handle]:
        """Handles of processes under the data directory that are still running."""
        return await asyncio.to_thread(self._scan)

    async def forget(self, resource_id: str) -> None:
        """Remove what a deleted resource left: its logs, run folders (secrets with them)
        and workspace home; kept only where the operator asked (TITAN_KEEP_DELETED_FILES)."""
        if self.keep_files:
            return
        for folder in (
            self.root / resource_id,
            self.user_root / "run" / resource_id,
            self.user_root / "home" / resource_id,
        ):
            await asyncio.to_thread(shutil.rmtree, folder, True)

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


def _run_folder(handle: Handle) -> Path:
    """The process's run folder (handles written before run folders existed: its own)."""
    return Path(handle.get("run") or handle["dir"])


def _remove_secrets(handle: Handle) -> None:
    shutil.rmtree(_run_folder(handle) / SECRETS, ignore_errors=True)


def _recorded_exit_code(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / "exit.json").read_text())["exit_code"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _find_marker(path: Path, offset: int) -> tuple[bool, int]:
    """Whether the output from ``offset`` on holds the ready line; where to look next."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            text = stream.read()
    except FileNotFoundError:
        return False, offset
    if READY_MARKER.encode() in text:
        return True, offset + len(text)
    # Keep the last partial line: the marker may be half written.
    cut = text.rfind(b"\n") + 1
    return False, offset + cut


def _read_log(path: Path, tail: int | None, offset: int) -> LogChunk:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            if tail is not None:
                start = max(0, size - 64 * 1024 * max(1, tail // 100 + 1))
                stream.seek(start)
                lines = stream.read(size - start).decode(errors="replace").splitlines()[-tail:]
                return LogChunk("\n".join(lines) + ("\n" if lines else ""), size)
            # Up to ``size`` only: what the process writes meanwhile comes from next_offset on.
            start = min(offset, size)
            stream.seek(start)
            return LogChunk(stream.read(size - start).decode(errors="replace"), size)
    except FileNotFoundError:
        return LogChunk("", 0)
