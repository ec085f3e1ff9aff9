"""Small fault-injection backends for testing the reconciler (no real processes)."""

from __future__ import annotations

import asyncio
import itertools

from service.backends.base import (
    Backend,
    Checkpoint,
    Handle,
    LogChunk,
    ProcessSpec,
    ProcessState,
    Started,
)
from service.errors import BackendError


class FakeBackend(Backend):
    """An in-memory backend that can start slowly, fail at start N, or let processes die."""

    name = "fake"

    def __init__(
        self,
        start_delay: float = 0.0,
        fail_at: int | None = None,
        fail_names: frozenset[str] = frozenset(),
    ) -> None:
        self.start_delay = start_delay
        self.fail_at = fail_at
        self.fail_names = set(fail_names)
        self.specs: dict[int, ProcessSpec] = {}
        self.exit_codes: dict[int, int] = {}
        self.starts: list[str] = []
        self.stops: list[str] = []
        self._pids = itertools.count(1000)
        self._ports = itertools.count(20000, 100)

    async def reserve_ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """Made-up port numbers, new at every start (nothing listens on them)."""
        return {name: next(self._ports) for name in wanted}

    async def start(self, spec: ProcessSpec, checkpoint: Checkpoint) -> Started:
        attempt = len(self.starts) + 1
        self.starts.append(spec.name)
        pid = next(self._pids)
        self.specs[pid] = spec
        handle = {"pid": pid, "resource_id": spec.resource_id, "name": spec.name}
        await checkpoint(handle)
        await asyncio.sleep(self.start_delay)
        if attempt == self.fail_at or spec.name in self.fail_names:
            raise BackendError(f"{spec.name} failed at start {attempt}")
        return Started(handle)

    async def stop(self, handle: Handle) -> None:
        if self.specs.pop(handle["pid"], None) is not None:
            self.stops.append(handle["name"])

    async def status(self, handle: Handle) -> ProcessState:
        if handle["pid"] in self.specs:
            return ProcessState(running=True)
        return ProcessState(running=False, exit_code=self.exit_codes.get(handle["pid"]))

    async def logs(self, handle: Handle, tail: int | None = None, offset: int = 0) -> LogChunk:
        return LogChunk(f"log of {handle['name']}\n", 0)

    async def adopt(self) -> list[Handle]:
        return [
            {"pid": pid, "resource_id": s.resource_id, "name": s.name}
            for pid, s in self.specs.items()
        ]

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
        pid = self.pid_of(name)
        del self.specs[pid]
        self.exit_codes[pid] = code

    def running(self) -> list[str]:
        """Names of running processes, sorted."""
        return sorted(spec.name for spec in self.specs.values())
