"""The backend contract (tests/backend_contract.py) kept by the local backend: real
processes of this machine, run as the OS account the tests' users have."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest

from service.backends.base import Backend, Handle
from service.backends.local import LocalBackend
from tests.backend_contract import *  # noqa: F403 - the contract's tests, run here
from tests.backend_contract import Contract, Program, greeted
from tests.conftest import TEST_ACCOUNT, users_dir_for


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not)."""
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


class LocalContract(Contract):
    """Local backends on one data directory; processes run as ``TEST_ACCOUNT``."""

    account = TEST_ACCOUNT

    def __init__(self, root: Path, user_root: Path) -> None:
        super().__init__()
        self.root, self.user_root = root, user_root

    def backend(self) -> Backend:
        return LocalBackend(self.root, start_timeout=60, stop_timeout=5, user_root=self.user_root)

    def argv(self, program: Program, port: int | None) -> list[str]:
        return program.python(port)

    async def serves(self, port: int) -> bool:
        return await asyncio.to_thread(greeted, "127.0.0.1", port)

    async def vanish(self, handle: Handle) -> None:
        pid = int(handle["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(group_alive, pid):
            assert time.monotonic() < deadline, f"process group {pid} survived SIGKILL"
            await asyncio.sleep(0.05)
        for folder in (handle["dir"], handle["run"]):  # its log, exit file and secrets
            shutil.rmtree(folder)

    async def secrets_left(self, handle: Handle) -> bool:
        return (Path(handle["run"]) / "secrets").exists()


@pytest.fixture
def contract(tmp_path: Path) -> LocalContract:
    """The contract's processes under tmp_path, their users' folders where the leak check
    looks (see tests/conftest.py)."""
    return LocalContract(tmp_path / "processes", users_dir_for(tmp_path))
