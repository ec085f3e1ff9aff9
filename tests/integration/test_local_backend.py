"""The local backend on its own: process groups, idempotent stop, exit codes, adoption."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from service.backends.base import Handle, ProcessSpec
from service.backends.local import LocalBackend
from service.errors import BackendError


def job(name: str, command: str) -> ProcessSpec:
    return ProcessSpec("r1", name, "job", ["--shell", command], {"TITAN_RESOURCE": "a/job/j"})


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


def test_stop_ends_the_whole_group_and_is_idempotent(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend = LocalBackend(tmp_path / "processes", stop_timeout=2)
        started = await backend.start(job("j", "sleep 300 & sleep 300 & wait"), no_checkpoint)
        pid = started.handle["pid"]
        deadline = time.monotonic() + 10
        while len(group_members(pid)) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(group_members(pid)) >= 4  # wrapper, sh and two sleeps
        assert (await backend.status(started.handle)).running
        await backend.stop(started.handle)
        assert group_members(pid) == []
        await backend.stop(started.handle)  # stopping a stopped process succeeds
        assert not (await backend.status(started.handle)).running

    asyncio.run(scenario())


def test_exit_codes_and_logs_survive_a_new_backend(tmp_path: Path) -> None:
    async def scenario() -> None:
        root = tmp_path / "processes"
        backend = LocalBackend(root)
        started = await backend.start(job("j", "echo one; echo two; exit 5"), no_checkpoint)
        while (await backend.status(started.handle)).running:
            await asyncio.sleep(0.05)
        assert (await backend.status(started.handle)).exit_code == 5
        fresh = LocalBackend(root)  # as after a control-plane restart
        assert (await fresh.status(started.handle)).exit_code == 5
        tail = await fresh.logs(started.handle, tail=2)
        assert tail.text.splitlines() == ["two", "titan: job exited with code 5"]
        whole = await fresh.logs(started.handle)
        assert "one\ntwo\n" in whole.text
        assert (await fresh.logs(started.handle, offset=whole.next_offset)).text == ""
        await fresh.stop(started.handle)

    asyncio.run(scenario())


def test_adopt_finds_running_processes(tmp_path: Path) -> None:
    async def scenario() -> None:
        root = tmp_path / "processes"
        backend = LocalBackend(root)
        started = await backend.start(job("j", "sleep 300"), no_checkpoint)
        found = await LocalBackend(root).adopt()
        assert [(h["resource_id"], h["name"], h["pid"]) for h in found] == [
            ("r1", "j", started.handle["pid"])
        ]
        await backend.stop(started.handle)
        assert await LocalBackend(root).adopt() == []

    asyncio.run(scenario())


def test_adopt_finds_a_process_whose_handle_was_never_written(tmp_path: Path) -> None:
    async def scenario() -> None:
        root = tmp_path / "processes"
        backend = LocalBackend(root)
        started = await backend.start(job("j", "sleep 300"), no_checkpoint)
        # As if the control plane died after spawning it, before writing its handle.
        (Path(started.handle["dir"]) / "handle.json").unlink()
        found = await LocalBackend(root).adopt()
        assert [(h["resource_id"], h["name"], h["pid"], h["role"]) for h in found] == [
            ("r1", "j", started.handle["pid"], "job")
        ]
        await LocalBackend(root).stop(found[0])  # what stop_orphans does with it
        assert await LocalBackend(root).adopt() == []

    asyncio.run(scenario())


def test_a_scheduler_that_cannot_start_is_reported(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend = LocalBackend(tmp_path / "processes")
        handles: list[Handle] = []

        async def keep(handle: Handle) -> None:
            handles.append(handle)

        spec = ProcessSpec("r1", "scheduler", "scheduler", [], {}, start_script="exit 3")
        with pytest.raises(BackendError, match="exited with code 3 while starting"):
            await backend.start(spec, keep)
        assert handles, "the handle was checkpointed before the failure"
        await backend.stop(handles[0])

    asyncio.run(scenario())


def test_a_missing_working_directory_is_a_clear_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend = LocalBackend(tmp_path / "processes")
        spec = ProcessSpec(
            "r1", "j", "job", ["--shell", "true"], {}, working_directory=str(tmp_path / "nope")
        )
        with pytest.raises(BackendError, match="working_directory"):
            await backend.start(spec, no_checkpoint)

    asyncio.run(scenario())
