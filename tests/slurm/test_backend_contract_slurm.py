"""The backend contract (tests/backend_contract.py) kept by the Slurm backend: real Slurm
jobs on the two namespace hosts, run as the tests' OS account, named with the test's
prefix and cancelled after it."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path

import pytest

from service.backends.base import Backend, Handle
from service.backends.slurm import SlurmBackend
from service.backends.slurm_commands import job
from tests.backend_contract import *  # noqa: F403 - the contract's tests, run here
from tests.backend_contract import Contract, Program, greeted
from tests.conftest import TEST_ACCOUNT, users_dir_for
from tests.slurm.conftest import NODES, slurm

pytestmark = pytest.mark.slurm


class SlurmContract(Contract):
    """Slurm backends with one job name prefix and data directory; jobs run as
    ``TEST_ACCOUNT`` on whichever node Slurm picks."""

    account = TEST_ACCOUNT

    def __init__(self, root: Path, user_root: Path, prefix: str) -> None:
        super().__init__()
        self.root, self.user_root, self.prefix = root, user_root, prefix

    def backend(self) -> Backend:
        return SlurmBackend(
            self.root,
            user_root=self.user_root,
            python=sys.executable,
            prefix=self.prefix,
            start_timeout=60,
            stop_timeout=5,
        )

    def argv(self, program: Program, port: int | None) -> list[str]:
        return program.python(port)

    async def serves(self, port: int) -> bool:
        for address in NODES.values():  # wherever Slurm put it
            if await asyncio.to_thread(greeted, address, port):
                return True
        return False

    async def vanish(self, handle: Handle) -> None:
        """``scancel --signal=KILL``, as an operator would, and its folders gone."""
        slurm("scancel", "--signal=KILL", "--full", handle["job_id"])
        deadline = time.monotonic() + 30
        while (found := await job(handle["job_id"])) is not None and (
            found.running or found.waiting or found.state == "COMPLETING"
        ):
            assert time.monotonic() < deadline, f"job {handle['job_id']} survived scancel"
            await asyncio.sleep(0.1)
        for folder in (handle["dir"], handle["run"]):
            shutil.rmtree(folder)

    async def secrets_left(self, handle: Handle) -> bool:
        return (Path(handle["run"]) / "secrets").exists()


@pytest.fixture
def contract(tmp_path: Path, slurm_prefix: str) -> SlurmContract:
    """The contract's jobs named with the test's prefix (cancelled after it), their folders
    where the tests' account reaches them."""
    return SlurmContract(tmp_path / "processes", users_dir_for(tmp_path), slurm_prefix)
