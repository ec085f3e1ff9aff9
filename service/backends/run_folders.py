"""A process's own folders and environment, for backends whose processes run on hosts
that share this machine's filesystem (local subprocesses, Slurm jobs).

Each process gets a run folder, ``<users_dir>/run/<resource id>/<name>-<ms>/``,
that belongs to the OS account it runs as (``ProcessSpec.account``, or the
control plane's own for admins): its default working directory and HOME,
``exit.json`` once it ends (``TITAN_EXIT_FILE``), ``output.times`` (when each
output line began, ``TITAN_LOG_TIMES``), its scratch folder and its
secret files (0700 folder, 0600 files; removed as soon as it is seen to have
ended, and at every stop). Every folder between it and ``users_dir`` is
passable (0711) but listable by no account, so one person's process cannot
find another's. Its environment is an allowlist of the control plane's
(see :func:`~service.backends.base.inherited_environment`) plus what Titan sets.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from service.backends.base import (
    Handle,
    LogChunk,
    ProcessSpec,
    inherited_environment,
    process_environment,
)
from service.backends.log_times import last_lines
from service.core.identity.accounts import Account, lookup
from service.errors import BackendError, TitanError
from workers.entrypoint import READY_MARKER

SECRETS = "secrets"  # the process's secret files (0700 folder, 0600 files), gone at stop


@dataclass(frozen=True)
class Prepared:
    """A process ready to be started: where, as whom, with which environment."""

    run: Path  # its run folder
    cwd: Path  # where it starts
    env: dict[str, str]  # its whole environment
    scratch: str  # the private scratch folder it may make (TITAN_SCRATCH_DIR), removed at stop
    account: Account | None


class RunFolders:
    """Makes and removes the run folders of processes under ``user_root``."""

    def __init__(self, user_root: Path, pass_environment: list[str] | None = None) -> None:
        self.user_root = user_root
        self.pass_environment = list(pass_environment or [])

    def account(self, spec: ProcessSpec) -> Account | None:
        """The OS account ``spec`` runs as; None for the control plane's own."""
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

    def prepare(self, spec: ProcessSpec, leaf: str) -> Prepared:
        """The run folder ``leaf`` of ``spec`` made, with its working directory, output
        folder, shared folders and (last: nothing after may fail) secret files; the
        environment the process must get. Nothing secret is left if it fails."""
        account = self.account(spec)
        run = self.passage(self.user_root / "run" / spec.resource_id) / leaf
        run.mkdir(mode=0o700, exist_ok=True)
        give(run, account)
        try:
            return self._prepare(spec, account, run)
        except BaseException:
            shutil.rmtree(run / SECRETS, ignore_errors=True)
            raise

    def _prepare(self, spec: ProcessSpec, account: Account | None, run: Path) -> Prepared:
        cwd, home = self._working_directory(spec, account, run)
        env = inherited_environment(self.pass_environment)
        env.update(process_environment(spec, str(run / SECRETS)))
        env["HOME"] = str(home)
        temporary = run / "tmp"  # not the shared /tmp: programs' scratch space
        temporary.mkdir(mode=0o700, exist_ok=True)
        give(temporary, account)
        env["TMPDIR"] = str(temporary)
        if account is not None:
            env["USER"] = env["LOGNAME"] = account.name
        env["TITAN_EXIT_FILE"] = str(run / "exit.json")
        env["TITAN_LOG_TIMES"] = str(run / LINE_TIMES)  # when each output line began
        # A short private folder if the program asks for one (Unix socket paths must stay
        # short), removed at stop.
        scratch = f"/tmp/titan-{secrets.token_hex(6)}"
        env["TITAN_SCRATCH_DIR"] = scratch
        if spec.output_dir:
            results = Path(spec.output_dir)
            self.passage(results.parent)
            results.mkdir(mode=0o700, exist_ok=True)
            give(results, account)
            env["TITAN_OUTPUT_DIR"] = spec.output_dir
        if spec.start_script:
            env["TITAN_START_SCRIPT"] = spec.start_script
        for shared in spec.folders:
            self._share(shared.host_path, account)
            # No mounts: the folder by variable, and a link where the process runs.
            env[f"TITAN_FOLDER_{shared.name.upper().replace('-', '_')}"] = shared.host_path
            if not spec.working_directory:
                link = cwd / Path(shared.path).name
                if not link.exists() and not link.is_symlink():
                    link.symlink_to(shared.host_path, target_is_directory=True)
        if spec.secret_files:
            write_secrets(run / SECRETS, spec.secret_files, account)
        return Prepared(run, cwd, env, scratch, account)

    def _working_directory(
        self, spec: ProcessSpec, account: Account | None, run: Path
    ) -> tuple[Path, Path]:
        """Where the process starts, and its HOME."""
        if spec.home:  # notebooks outlive restarts of the workspace
            home = self.passage(self.user_root / "home") / spec.resource_id
            home.mkdir(mode=0o700, exist_ok=True)
            give(home, account)
        else:
            home = run
        if not spec.working_directory:
            return home, home
        cwd = Path(spec.working_directory).expanduser()
        if not cwd.is_dir():
            raise BackendError(f"working_directory {str(cwd)!r} does not exist on this machine")
        return cwd, home

    def passage(self, folder: Path) -> Path:
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
        self.passage(path.parent)
        path.chmod(0o777)

    def forget(self, resource_id: str) -> None:
        """Remove a deleted resource's run folders (secrets with them) and home."""
        for folder in (self.user_root / "run" / resource_id, self.user_root / "home" / resource_id):
            shutil.rmtree(folder, ignore_errors=True)


def write_secrets(folder: Path, files: dict[str, str], account: Account | None) -> Path:
    """``files`` (name → value) written into ``folder``, readable by ``account`` only."""
    folder.mkdir(mode=0o700, exist_ok=True)
    give(folder, account)
    for name, value in files.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(value)
        give(folder / name, account)
    return folder


def give(path: Path, account: Account | None) -> None:
    """Make ``path`` its process's account's own (no-op for the control plane's account)."""
    if account is not None:
        os.chown(path, account.uid, account.gid)


LINE_TIMES = "output.times"


def run_folder(handle: Handle) -> Path:
    """The process's run folder (handles written before run folders existed: its own)."""
    return Path(handle.get("run") or handle["dir"])


def remove_secrets(handle: Handle) -> None:
    """Delete the process's secret files (it has ended or is being stopped)."""
    shutil.rmtree(run_folder(handle) / SECRETS, ignore_errors=True)


def recorded_exit_code(folder: Path) -> int | None:
    """The exit code the entrypoint wrote to ``folder``'s ``exit.json``; None if none."""
    try:
        return int(json.loads((folder / "exit.json").read_text())["exit_code"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_log(path: Path, tail: int | None, offset: int) -> LogChunk:
    """The log file's text from byte ``offset`` (or its last ``tail`` lines), and where
    to read next."""
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            if tail is not None:
                start = max(0, size - 64 * 1024 * max(1, tail // 100 + 1))
                stream.seek(start)
                return last_lines(stream.read(size - start), tail, size)
            # Up to ``size`` only: what the process writes meanwhile comes from next_offset on.
            start = min(offset, size)
            stream.seek(start)
            return LogChunk(stream.read(size - start).decode(errors="replace"), size, start)
    except FileNotFoundError:
        return LogChunk("", 0, 0)


def find_ready_line(path: Path, offset: int) -> tuple[bool, int]:
    """Whether the output from ``offset`` on holds the ready line; where to look next."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            text = stream.read()
    except (FileNotFoundError, PermissionError):
        return False, offset
    if READY_MARKER.encode() in text:
        return True, offset + len(text)
    # Keep the last partial line: the marker may be half written.
    cut = text.rfind(b"\n") + 1
    return False, offset + cut
