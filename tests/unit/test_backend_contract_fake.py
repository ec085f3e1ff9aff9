"""The backend contract (tests/backend_contract.py) kept by the in-memory FakeBackend."""

from __future__ import annotations

import asyncio
import itertools
import signal

import pytest

from service.backends.base import Backend, Handle
from tests.backend_contract import *  # noqa: F403 - the contract's tests, run here
from tests.backend_contract import Contract, Program
from tests.fakes import FakeBackend, FakeMachine, FakeProcess, FakeProgram


def fake_program(program: Program, port: int | None) -> FakeProgram:
    """``program`` as the fake runs it: what its Python source does, in memory."""

    async def run(process: FakeProcess) -> int:
        for line in program.prints:
            process.print(line)
        if program.show_secrets:
            folder = process.env["TITAN_SECRETS_DIR"]
            for name in process.files(folder):
                process.print(f"file {name}: {process.read(f'{folder}/{name}')}")
            process.print(f"via env: {process.read(process.env['SECRET_PATH'])}")
        if program.serve_after is not None and port is not None:
            await asyncio.sleep(program.serve_after)
            process.listen(port)
        if program.later:
            await asyncio.sleep(program.later_after)
            for line in program.later:
                process.print(line)
        if program.signal is not None:
            return -program.signal
        if program.exit_code is not None:
            return program.exit_code
        await asyncio.Event().wait()  # until stopped
        raise AssertionError("unreachable")

    return run


class FakeContract(Contract):
    """Fake backends sharing one in-memory machine."""

    def __init__(self) -> None:
        super().__init__()
        self.machine = FakeMachine()
        self._programs = itertools.count()

    def backend(self) -> Backend:
        return FakeBackend(machine=self.machine, start_timeout=30)

    def argv(self, program: Program, port: int | None) -> list[str]:
        name = f"program-{next(self._programs)}"
        self.machine.programs[name] = fake_program(program, port)
        return [name]

    async def serves(self, port: int) -> bool:
        return port in self.machine.serving

    async def vanish(self, handle: Handle) -> None:
        process = self.machine.processes.pop(handle["pid"])
        process.end(-signal.SIGKILL)

    async def secrets_left(self, handle: Handle) -> bool:
        return any(path.startswith(f"/fake/run/{handle['pid']}/") for path in self.machine.files)


@pytest.fixture
def contract() -> FakeContract:
    """The contract's processes on an in-memory machine."""
    return FakeContract()
