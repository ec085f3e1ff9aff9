"""The local backend on its own: process groups, adoption without a handle, working folders.

What every backend promises (start, stop, status, logs, adoption, secret files)
is tests/backend_contract.py, run against this backend by
tests/integration/test_backend_contract_local.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from service.backends.base import Handle, ProcessSpec, handle_identity
from service.backends.local import LocalBackend
from service.errors import BackendError
from tests.conftest import users_dir_for


def local(tmp_path: Path, stop_timeout: float = 10.0) -> LocalBackend:
    """A local backend whose users' folder the leak check watches and removes."""
    root, users = tmp_path / "processes", users_dir_for(tmp_path)
    return LocalBackend(root, stop_timeout=stop_timeout, user_root=users)


def job(name: str, command: str, working_directory: str | None = None) -> ProcessSpec:
    argv = ["/bin/sh", "-c", command]
    return ProcessSpec("r1", name, "job", argv, {}, working_directory=working_directory)


async def no_checkpoint(_handle: Handle) -> None:
    return None


def group_members(pgid: int) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                found.append(proc.pid)
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend = local(tmp_path, stop_timeout=2)
        started = await backend.start(job("j", "sleep 300 & sleep 300 & wait"), no_checkpoint)
        pid = started.handle["pid"]
        deadline = time.monotonic() + 10
        while len(group_members(pid)) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(group_members(pid)) >= 4  # entrypoint, sh and two sleeps
        await backend.stop(started.handle)
        assert group_members(pid) == []

    asyncio.run(scenario())


def test_adopt_finds_a_process_whose_handle_was_never_written(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend = local(tmp_path)
        started = await backend.start(job("j", "sleep 300"), no_checkpoint)
        # As if the control plane died after spawning it, before writing its handle.
        (Path(started.handle["dir"]) / "handle.json").unlink()
        found = await local(tmp_path).adopt()
        assert [handle_identity(h) for h in found] == [handle_identity(started.handle)]
        await local(tmp_path).stop(found[0])  # what stop_orphans does with it
        assert await local(tmp_path).adopt() == []

    asyncio.run(scenario())


def test_a_missing_working_directory_is_a_clear_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        spec = job("j", "true", working_directory=str(tmp_path / "nope"))
        with pytest.raises(BackendError, match="working_directory"):
            await local(tmp_path).start(spec, no_checkpoint)

    asyncio.run(scenario())
