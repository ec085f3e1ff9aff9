"""The backend contract as properties, written once and run against every backend.

A backend binds these tests in a module of its own (the fake in
tests/unit/test_backend_contract_fake.py, local in
tests/integration/test_backend_contract_local.py, docker in
tests/docker/test_backend_contract_docker.py): it imports them and defines a
``contract`` fixture, a :class:`Contract` that makes backends (each new one as
after a restart of the control plane: same data directory or name prefix),
turns a :class:`Program` into a ProcessSpec that runs it, and sees what only
its machine sees (whether a port serves, whether secret files are left).
"""

from __future__ import annotations

import abc
import asyncio
import json
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from service.backends.base import Backend, Handle, ProcessSpec, ProcessState, handle_identity
from service.errors import BackendError

GREETING = b"serving\n"  # what a Program's server sends every connection
SECRET = "s3cret-value"
WAIT = 60.0  # seconds a property may take to show (two busy cores start containers slowly)


@dataclass(frozen=True)
class Program:
    """What a test process does, in this order: print ``prints``; with ``show_secrets``,
    print each file in ``$TITAN_SECRETS_DIR`` (``file NAME: VALUE``) and the file
    ``$SECRET_PATH`` names (``via env: VALUE``); after ``serve_after`` seconds, serve the
    spec's ready port, greeting each connection with ``GREETING``; after ``later_after``
    more seconds, print ``later``; then kill itself with ``signal``, or exit with
    ``exit_code``, or run until stopped."""

    prints: tuple[str, ...] = ()
    show_secrets: bool = False
    serve_after: float | None = None
    later: tuple[str, ...] = ()
    later_after: float = 0.0
    signal: int | None = None
    exit_code: int | None = None

    def python(self, port: int | None) -> list[str]:
        """The program as the argv of a real process, serving ``port`` where it serves."""
        return ["${TITAN_PYTHON}", "-c", _SOURCE, json.dumps({**asdict(self), "port": port})]


# Program in Python, as real backends run it (its parameters as JSON in argv[1]).
_SOURCE = f"""
import json, os, socket, sys, threading, time
p = json.loads(sys.argv[1])
def say(line):
    print(line, flush=True)
def read(path):
    with open(path) as stream:
        return stream.read()
for line in p["prints"]:
    say(line)
if p["show_secrets"]:
    folder = os.environ["TITAN_SECRETS_DIR"]
    for name in sorted(os.listdir(folder)):
        say("file " + name + ": " + read(os.path.join(folder, name)))
    say("via env: " + read(os.environ["SECRET_PATH"]))
if p["serve_after"] is not None:
    time.sleep(p["serve_after"])
    server = socket.create_server((os.environ["TITAN_BIND_HOST"], p["port"]))
    def greet():
        while True:
            connection, _ = server.accept()
            connection.sendall({GREETING!r})
            connection.close()
    threading.Thread(target=greet, daemon=True).start()
if p["later"]:
    time.sleep(p["later_after"])
    for line in p["later"]:
        say(line)
if p["signal"] is not None:
    os.kill(os.getpid(), p["signal"])
if p["exit_code"] is not None:
    sys.exit(p["exit_code"])
while True:
    time.sleep(3600)
"""


class Contract(abc.ABC):
    """One backend under the contract: how the tests make it, run programs on it, and see
    what only its machine sees. Every process it makes belongs to one resource."""

    account: str | None = None  # the OS account processes run as (ProcessSpec.account)

    def __init__(self) -> None:
        self.resource_id = uuid.uuid4().hex

    @abc.abstractmethod
    def backend(self) -> Backend:
        """A new backend on the same machine, data directory or prefix as every other this
        made: what a restarted control plane makes."""

    @abc.abstractmethod
    def argv(self, program: Program, port: int | None) -> list[str]:
        """What runs ``program`` on this backend, serving ``port`` where it serves."""

    @abc.abstractmethod
    async def serves(self, port: int) -> bool:
        """Whether the control plane's host gets ``GREETING`` from ``port`` now."""

    @abc.abstractmethod
    async def vanish(self, handle: Handle) -> None:
        """Make the process, and what it ran in, disappear behind the backend's back (as
        an operator's ``kill -9`` and cleanup, or ``docker rm -f``, would)."""

    @abc.abstractmethod
    async def secrets_left(self, handle: Handle) -> bool:
        """Whether any of the process's secret files is still on its machine."""

    def spec(
        self,
        name: str,
        program: Program,
        *,
        ready_port: int | None = None,
        ready_text: str | None = None,
        env: dict[str, str] | None = None,
        secret_files: dict[str, str] | None = None,
    ) -> ProcessSpec:
        """A job process ``name`` that runs ``program``, up once ``ready_port`` serves
        and it printed ``ready_text`` (where given)."""
        ports = [ready_port] if ready_port is not None else []
        return ProcessSpec(
            self.resource_id,
            name,
            "job",
            self.argv(program, ready_port),
            env or {},
            ports=ports,
            published=tuple(ports),
            ready_port=ready_port,
            ready_text=ready_text,
            secret_files=secret_files or {},
            labels={"owner": "alice", "resource": "alice/job/contract", "generation": "1"},
            account=self.account,
        )


def greeted(host: str, port: int) -> bool:
    """Whether a connection to ``port`` at ``host`` is greeted with ``GREETING`` (a port a
    container publishes accepts connections before anything in it listens)."""
    try:
        with socket.create_connection((host, port), timeout=5) as connection:
            connection.settimeout(5)
            return connection.recv(len(GREETING)) == GREETING
    except OSError:
        return False


class Checkpoints:
    """A checkpoint that records every handle it is given (and calls ``also`` on it)."""

    def __init__(self, also: Callable[[Handle], Awaitable[None]] | None = None) -> None:
        self.handles: list[Handle] = []
        self.also = also

    async def __call__(self, handle: Handle) -> None:
        self.handles.append(handle)
        if self.also is not None:
            await self.also(handle)


def run(scenario: Coroutine[Any, Any, None]) -> None:
    """Run one test's scenario."""
    asyncio.run(scenario)


async def until_ended(backend: Backend, handle: Handle) -> ProcessState:
    """Its state once it has ended (fails after ``WAIT``)."""
    deadline = time.monotonic() + WAIT
    while (state := await backend.status(handle)).running:
        assert time.monotonic() < deadline, f"{handle['name']} still runs after {WAIT:.0f}s"
        await asyncio.sleep(0.1)
    return state


async def until_printed(backend: Backend, handle: Handle, start: str) -> str:
    """Its whole output once a line of it starts with ``start`` (fails after ``WAIT``).

    Whole lines: the entrypoint's first line shows the program, source and all.
    """
    deadline = time.monotonic() + WAIT
    while True:
        output = (await backend.logs(handle)).text
        if any(line.startswith(start) for line in output.splitlines()):
            return output
        assert time.monotonic() < deadline, f"no {start!r} after {WAIT:.0f}s in:\n{output}"
        await asyncio.sleep(0.1)


async def stopped(backend: Backend, handle: Handle) -> ProcessState:
    """Stop it; its state after."""
    await backend.stop(handle)
    return await backend.status(handle)


@dataclass
class Processes:
    """Processes a test started on one backend, stopped after it whatever happened."""

    backend: Backend
    handles: list[Handle] = field(default_factory=list)

    async def start(self, spec: ProcessSpec) -> Handle:
        """Start it; its handle (kept for ``stop_all`` as soon as it is checkpointed)."""
        checkpoints = Checkpoints()
        try:
            started = await self.backend.start(spec, checkpoints)
        finally:
            self.handles += checkpoints.handles
        return started.handle

    async def stop_all(self) -> None:
        """Stop every process started (idempotent, as stop is)."""
        for handle in self.handles:
            await self.backend.stop(handle)


# -- 1. start and readiness --------------------------------------------------------------------


def test_start_checkpoints_first_and_returns_once_the_ready_port_serves(
    contract: Contract,
) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        port = (await backend.reserve_ports({"p": 1}))["p"]
        serving_at_checkpoint: list[bool] = []

        async def look(_handle: Handle) -> None:
            serving_at_checkpoint.append(await contract.serves(port))

        checkpoints = Checkpoints(look)
        spec = contract.spec("slow", Program(serve_after=1.0), ready_port=port)
        try:
            started = await backend.start(spec, checkpoints)
            assert await contract.serves(port), "start returned before its ready port served"
            # A backend may checkpoint again as it learns more (where Slurm placed it),
            # always the same process, the last one what start returns.
            assert checkpoints.handles[-1] == started.handle
            assert {handle_identity(h) for h in checkpoints.handles} == {
                handle_identity(started.handle)
            }
            assert serving_at_checkpoint[0] is False, "checkpointed late: only once it served"
            assert (await backend.status(started.handle)).running
        finally:
            for handle in checkpoints.handles:
                await backend.stop(handle)

    run(scenario())


def test_start_returns_once_the_program_prints_its_ready_text(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        program = Program(prints=("warming up",), later=("up and serving",), later_after=1.0)
        try:
            handle = await processes.start(
                contract.spec("talker", program, ready_text="up and serving")
            )
            lines = (await backend.logs(handle)).text.splitlines()
            assert "up and serving" in lines, "start returned before the program said it"
            assert (await backend.status(handle)).running
        finally:
            await processes.stop_all()

    run(scenario())


def test_a_process_without_a_ready_port_or_text_is_ready_at_once(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            handle = await processes.start(contract.spec("quiet", Program()))  # never serves
            assert processes.handles[-1] == handle
            assert (await backend.status(handle)).running
        finally:
            await processes.stop_all()

    run(scenario())


def test_a_process_that_exits_while_starting_is_an_error_naming_it(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        port = (await backend.reserve_ports({"p": 1}))["p"]
        checkpoints = Checkpoints()
        program = Program(prints=("cannot open the model file",), exit_code=3)
        with pytest.raises(BackendError) as raised:
            await backend.start(contract.spec("doomed", program, ready_port=port), checkpoints)
        first, *_ = str(raised.value).splitlines()
        assert "doomed" in first and "code 3" in first, raised.value
        assert "cannot open the model file" in str(raised.value)  # its last output
        assert checkpoints.handles, "its handle was checkpointed before the error"
        assert len({handle_identity(h) for h in checkpoints.handles}) == 1
        assert not (await stopped(backend, checkpoints.handles[-1])).running

    run(scenario())


# -- 2. stop is idempotent ---------------------------------------------------------------------


def test_stop_twice_and_status_says_not_running(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            handle = await processes.start(contract.spec("sleeper", Program()))
            assert (await backend.status(handle)).running
            assert not (await stopped(backend, handle)).running
            assert not (await stopped(backend, handle)).running
        finally:
            await processes.stop_all()

    run(scenario())


def test_stopping_a_process_that_already_exited_succeeds(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            handle = await processes.start(contract.spec("brief", Program(exit_code=0)))
            assert (await until_ended(backend, handle)).exit_code == 0
            after = await stopped(backend, handle)
            assert not after.running and after.exit_code == 0  # stopping keeps what it said
        finally:
            await processes.stop_all()

    run(scenario())


def test_stopping_a_process_that_no_longer_exists_succeeds(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            handle = await processes.start(contract.spec("gone", Program()))
            await contract.vanish(handle)
            assert not (await stopped(backend, handle)).running
            restarted = contract.backend()  # a restarted control plane stops it too
            assert not (await stopped(restarted, handle)).running
        finally:
            await processes.stop_all()

    run(scenario())


# -- 3. status and exit codes ------------------------------------------------------------------


def test_status_reports_exit_codes_and_a_signal(contract: Contract) -> None:
    programs = {
        "zero": Program(exit_code=0),
        "three": Program(exit_code=3),
        "killed": Program(signal=signal.SIGKILL),
    }

    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            specs = [contract.spec(name, program) for name, program in programs.items()]
            handles = await asyncio.gather(*(processes.start(spec) for spec in specs))
            codes = [(await until_ended(backend, handle)).exit_code for handle in handles]
            restarted = contract.backend()  # knows only what the machine kept
            again = [(await restarted.status(handle)) for handle in handles]
            logs = [(await backend.logs(handle)).text for handle in handles]
            logs_again = [(await restarted.logs(handle)).text for handle in handles]
        finally:
            await processes.stop_all()
        assert logs_again == logs
        assert codes[:2] == [0, 3]
        # Either convention names the signal: Python's -S (the local exit file), or a
        # shell's 128 + S (a container's exit status).
        assert codes[2] in (-signal.SIGKILL, 128 + signal.SIGKILL), codes
        assert [(s.running, s.exit_code) for s in again] == [(False, code) for code in codes]

    run(scenario())


# -- 4. logs with offsets ----------------------------------------------------------------------


def test_logs_from_an_offset_return_only_new_output_and_tail_the_last_lines(
    contract: Contract,
) -> None:
    program = Program(prints=("early 1", "early 2"), later=("late 1", "late 2"), later_after=1)

    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            handle = await processes.start(contract.spec("talker", program))
            await until_printed(backend, handle, "early 2")
            reads: list[str] = []
            offset = 0
            deadline = time.monotonic() + WAIT
            while "late 2\n" not in "".join(reads):  # following it, as `titan logs -f` does
                assert time.monotonic() < deadline, reads
                chunk = await backend.logs(handle, offset=offset)
                assert chunk.next_offset == offset + len(chunk.text.encode())
                reads.append(chunk.text)
                offset = chunk.next_offset
                await asyncio.sleep(0.1)
            whole = await backend.logs(handle)  # it prints nothing more
            assert "".join(reads) == whole.text and whole.next_offset == offset
            assert "early 1\nearly 2\n" in whole.text and whole.text.endswith("late 1\nlate 2\n")
            nothing = await backend.logs(handle, offset=offset)
            assert (nothing.text, nothing.next_offset) == ("", offset)
            middle = whole.text.encode().index(b"early 2")  # from any byte on
            assert (await backend.logs(handle, offset=middle)).text == whole.text[middle:]
            tail = await backend.logs(handle, tail=3)
            assert tail.text == "early 2\nlate 1\nlate 2\n" and tail.next_offset == offset
        finally:
            await processes.stop_all()

    run(scenario())


# -- 5. adoption after a restart ---------------------------------------------------------------


def test_a_new_backend_adopts_what_runs_and_stops_it(contract: Contract) -> None:
    async def scenario() -> None:
        before = contract.backend()
        processes = Processes(before)
        try:
            handles = [await processes.start(contract.spec(n, Program())) for n in ("a", "b")]
            after = contract.backend()  # the control plane restarted
            adopted = await after.adopt()
            assert sorted(map(handle_identity, adopted)) == sorted(map(handle_identity, handles))
            for handle in adopted:
                assert not (await stopped(after, handle)).running
            assert await contract.backend().adopt() == []
            for handle in handles:  # the same processes, however asked about
                assert not (await before.status(handle)).running
        finally:
            await processes.stop_all()

    run(scenario())


# -- 6. secrets as files -----------------------------------------------------------------------


def secret_spec(contract: Contract) -> ProcessSpec:
    return contract.spec(
        "reader",
        Program(show_secrets=True),
        env={"SECRET_PATH": "${TITAN_SECRETS_DIR}/token", "PLAIN": "plain"},
        secret_files={"token": SECRET, "ca.pem": "-----BEGIN CERTIFICATE-----"},
    )


def test_secret_files_are_files_the_process_reads(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            handle = await processes.start(secret_spec(contract))
            output = await until_printed(backend, handle, "via env:")
            assert await contract.secrets_left(handle)
        finally:
            await processes.stop_all()
        shown = [line for line in output.splitlines() if line.startswith(("file ", "via env"))]
        assert shown == [
            "file ca.pem: -----BEGIN CERTIFICATE-----",
            f"file token: {SECRET}",
            f"via env: {SECRET}",  # ${TITAN_SECRETS_DIR} in a value names the folder
        ]

    run(scenario())


def test_secret_files_are_gone_after_stop(contract: Contract) -> None:
    async def scenario() -> None:
        backend = contract.backend()
        processes = Processes(backend)
        try:
            handle = await processes.start(secret_spec(contract))
            await until_printed(backend, handle, "via env:")
            await backend.stop(handle)
            assert not await contract.secrets_left(handle)
        finally:
            await processes.stop_all()

    run(scenario())


# What a binding's `from tests.backend_contract import *` brings: the tests, nothing else.
__all__ = [name for name in list(globals()) if name.startswith("test_")]
