"""Small fault-injection backends for testing the reconciler (no real processes).

:class:`FakeBackend` keeps the backend contract (tests/backend_contract.py) in
memory. Its processes live on a :class:`FakeMachine`, which outlives any one
backend (as a host or an engine outlives a control plane), so a new backend on
the same machine adopts what an earlier one started. A process runs the
program its ``argv[0]`` names on the machine (an async function of the
process, see :data:`FakeProgram`); any other argv prints one line (and its
ready text), serves its ready port at once and runs until stopped, which is
all the reconciler tests need.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from service.backends.base import (
    Backend,
    Checkpoint,
    Handle,
    LogChunk,
    ProcessSpec,
    ProcessState,
    Started,
    process_environment,
)
from service.errors import BackendError

# A program: runs in the process, prints through it, and returns its exit code (a
# program killed by signal S returns -S). Cancelled when the process is stopped.
FakeProgram = Callable[["FakeProcess"], Awaitable[int]]


@dataclass(eq=False)
class FakeProcess:
    """One in-memory process: its spec, what it printed, and how it ended."""

    machine: FakeMachine
    handle: Handle
    spec: ProcessSpec
    env: dict[str, str] = field(repr=False)
    secrets: str  # the folder its secret files are in
    output: bytearray = field(default_factory=bytearray, repr=False)
    running: bool = True
    exit_code: int | None = None
    listening: set[int] = field(default_factory=set)
    task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        """Its process id on the machine."""
        return int(self.handle["pid"])

    def ready(self) -> bool:
        """Whether it serves: its ready port accepts connections and it printed its ready
        text (where its spec names them)."""
        port, text = self.spec.ready_port, self.spec.ready_text
        return (port is None or port in self.listening) and (
            text is None or text.encode() in self.output
        )

    def print(self, line: str) -> None:
        """Write ``line`` to its output."""
        self.output += f"{line}\n".encode()

    def listen(self, port: int) -> None:
        """Serve ``port`` from now until the process ends."""
        self.listening.add(port)
        self.machine.serving.add(port)

    def files(self, folder: str) -> list[str]:
        """Names of the files in ``folder``, sorted."""
        prefix = folder.rstrip("/") + "/"
        return sorted(
            path.removeprefix(prefix) for path in self.machine.files if path.startswith(prefix)
        )

    def read(self, path: str) -> str:
        """The content of the file at ``path``; FileNotFoundError if there is none."""
        try:
            return self.machine.files[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    def end(self, code: int | None) -> None:
        """It ends with ``code`` (None: unknown, as when stopped): stops serving, its secret
        files are removed and its program cancelled. A no-op once ended."""
        if not self.running:
            return
        self.running, self.exit_code = False, code
        self.machine.serving -= self.listening
        for name in self.files(self.secrets):
            del self.machine.files[f"{self.secrets}/{name}"]
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()


class FakeMachine:
    """What fake processes run on, shared by every FakeBackend made with it: processes by
    pid, files by path, the ports served, and the programs installed (by name)."""

    def __init__(self) -> None:
        self.processes: dict[int, FakeProcess] = {}
        self.files: dict[str, str] = {}
        self.serving: set[int] = set()
        self.programs: dict[str, FakeProgram] = {}
        self._pids = itertools.count(1000)
        self._ports = itertools.count(20000, 100)

    def spawn(self, spec: ProcessSpec) -> FakeProcess:
        """A new running process of ``spec``, its secret files written and its program
        started (needs a running event loop for an installed program)."""
        pid = next(self._pids)
        secrets = f"/fake/run/{pid}/secrets"
        handle: Handle = {
            "backend": "fake",
            "pid": pid,
            "resource_id": spec.resource_id,
            "name": spec.name,
            "role": spec.role,
        }
        process = FakeProcess(self, handle, spec, process_environment(spec, secrets), secrets)
        for name, value in spec.secret_files.items():
            self.files[f"{secrets}/{name}"] = value
        self.processes[pid] = process
        program = self.programs.get(spec.argv[0]) if spec.argv else None
        if program is None:
            process.print(f"log of {spec.name}")
            if spec.ready_text is not None:
                process.print(spec.ready_text)
            if spec.ready_port is not None:
                process.listen(spec.ready_port)
        else:
            process.task = asyncio.get_running_loop().create_task(_run(process, program))
        return process

    def reserve_ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """Made-up port numbers, new at every call (blocks of 100: room for any count)."""
        return {name: next(self._ports) for name in wanted}


async def _run(process: FakeProcess, program: FakeProgram) -> None:
    try:
        code = await program(process)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a crash, as Python's: its error in the output, code 1
        process.print(f"{type(exc).__name__}: {exc}")
        code = 1
    process.end(code)


class FakeBackend(Backend):
    """An in-memory backend that can start slowly, fail at start N, or let processes die."""

    name = "fake"

    def __init__(
        self,
        start_delay: float = 0.0,
        fail_at: int | None = None,
        fail_names: frozenset[str] = frozenset(),
        *,
        machine: FakeMachine | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.start_delay = start_delay
        self.fail_at = fail_at
        self.fail_names = set(fail_names)
        self.machine = machine or FakeMachine()
        self.start_timeout = start_timeout
        self.starts: list[str] = []
        self.stops: list[str] = []

    @property
    def specs(self) -> dict[int, ProcessSpec]:
        """The specs of the machine's running processes, by pid."""
        return {pid: p.spec for pid, p in self.machine.processes.items() if p.running}

    async def reserve_ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """Made-up port numbers, new at every start (nothing listens on them)."""
        return self.machine.reserve_ports(wanted)

    async def start(self, spec: ProcessSpec, checkpoint: Checkpoint) -> Started:
        """Spawn it, checkpoint its handle, then wait until it serves (see ``ready``).

        After ``start_delay``, the start numbered ``fail_at`` and starts of
        ``fail_names`` fail, leaving their process running for stop to clean up.
        """
        attempt = len(self.starts) + 1
        self.starts.append(spec.name)
        process = self.machine.spawn(spec)
        await checkpoint(dict(process.handle))
        await asyncio.sleep(self.start_delay)
        if attempt == self.fail_at or spec.name in self.fail_names:
            raise BackendError(f"{spec.name} failed at start {attempt}")
        deadline = time.monotonic() + self.start_timeout
        while not process.ready():
            if not process.running:
                tail = (await self.logs(process.handle, tail=15)).text
                raise BackendError(
                    f"{spec.name} exited with code {process.exit_code} while starting; "
                    f"last output:\n{tail}"
                )
            if time.monotonic() > deadline:
                raise BackendError(f"{spec.name} was not ready after {self.start_timeout:.0f}s")
            await asyncio.sleep(0.01)
        return Started(dict(process.handle))

    async def stop(self, handle: Handle) -> None:
        """End the process (no exit code); a no-op if it ended or is gone."""
        process = self.machine.processes.get(handle["pid"])
        if process is None or not process.running:
            return
        self.stops.append(process.spec.name)
        task = process.task
        process.end(None)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def status(self, handle: Handle) -> ProcessState:
        """Running, or ended with its code (None where stopped, or gone from the machine)."""
        process = self.machine.processes.get(handle["pid"])
        if process is None:
            return ProcessState(running=False, reason="it no longer exists")
        return ProcessState(running=process.running, exit_code=process.exit_code)

    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        """Its output from byte ``offset`` on, or its last ``tail`` lines."""
        process = self.machine.processes.get(handle["pid"])
        output = bytes(process.output) if process is not None else b""
        if tail is not None:
            lines = output.decode(errors="replace").splitlines()[-tail:]
            return LogChunk("\n".join(lines) + ("\n" if lines else ""), len(output))
        return LogChunk(output[offset:].decode(errors="replace"), len(output))

    async def adopt(self) -> list[Handle]:
        """Handles of every process running on the machine, whichever backend started it."""
        return [dict(p.handle) for p in self.machine.processes.values() if p.running]

    def pid_of(self, name: str, resource: str | None = None) -> int:
        """The pid of the running process called ``name`` (of the resource named ``resource``)."""
        return next(
            pid
            for pid, spec in self.specs.items()
            if spec.name == name
            and (resource is None or spec.labels.get("resource", "").endswith(f"/{resource}"))
        )

    def exit(self, name: str, code: int = -9) -> None:
        """Make the running process ``name`` end with ``code`` (a crash or a job finishing)."""
        self.machine.processes[self.pid_of(name)].end(code)

    def running(self) -> list[str]:
        """Names of running processes, sorted."""
        return sorted(spec.name for spec in self.specs.values())
