"""Server-side adaptive scaling of clusters, whatever their engine.

Every ``adaptive_interval_seconds`` the autoscaler asks each running cluster
with ``adaptive`` bounds how many workers its work needs (through its
engine's calls: a Dask scheduler's adaptive target, a Ray cluster's pending
resource demand), keeps that within the bounds, and changes the cluster's
worker set; the reconciler then starts or stops the processes.

Scale-up happens at once. Scale-down removes workers that have not started
yet first, then workers the cluster names as idle (they run no task) once
they have been idle for ``adaptive_wait_count`` checks in a row; their work
and data are handed over to the remaining workers before they stop. A busy worker is never
chosen. Every decision, with its reason, is a line of the resource's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.core.control import records
from service.core.control.periodic import every
from service.core.workloads.cluster_credentials import ClusterConnections
from service.core.workloads.worker_names import grow
from service.database.db import in_transaction
from service.engines import engine_of
from service.recipes.models import Adaptive

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Scaling:
    """One decision: the worker set before and after, who retires, and why."""

    current: list[str]
    workers: list[str]
    retire: list[str]
    why: str

    @property
    def reason(self) -> str:
        """The history line for this decision."""
        before, after = len(self.current), len(self.workers)
        if after > before:
            return f"adaptive: scaling up from {before} to {after} workers ({self.why})"
        going = [n for n in self.current if n not in self.workers]
        unstarted = [n for n in going if n not in self.retire]
        parts = [f"retiring idle {', '.join(self.retire)}"] if self.retire else []
        parts += [f"dropping {', '.join(unstarted)} (not started)"] if unstarted else []
        return (
            f"adaptive: scaling down from {before} to {after} workers, "
            f"{'; '.join(parts)} ({self.why})"
        )

    def keeping(self, names: list[str]) -> Scaling | None:
        """This decision with ``names`` staying after all; None if nothing is left to do."""
        workers = [n for n in self.current if n in self.workers or n in names]
        if workers == self.current:
            return None
        return Scaling(self.current, workers, [n for n in self.retire if n not in names], self.why)


def decide(
    current: list[str],
    wanted: int,
    bounds: Adaptive,
    connected: set[str],
    idle: list[str],
    idle_checks: dict[str, int],
    wait_count: int,
) -> Scaling | None:
    """What to do for one cluster, or None to leave it as it is.

    ``wanted`` is the scheduler's adaptive target; ``connected`` the workers
    it knows; ``idle`` those it would close; ``idle_checks`` how many checks in
    a row each worker has been idle (counting this one). Only workers not yet
    connected, or idle for ``wait_count`` checks, are ever removed.
    """
    target = bounds.clamp(wanted)
    why = f"the cluster asks for {wanted}; bounds {bounds.minimum}..{bounds.maximum}"
    if target > len(current):
        return Scaling(current, grow(current, target), [], why)
    excess = len(current) - target
    unstarted = [n for n in current if n not in connected]
    ready = [n for n in idle if n in connected and idle_checks.get(n, 0) >= wait_count]
    going = (unstarted + [n for n in ready if n in current])[:excess]
    if not going:
        return None
    survivors = [n for n in current if n not in going]
    return Scaling(current, survivors, [n for n in going if n in connected], why)


class Autoscaler:
    """Carries out the adaptive bounds of every running cluster."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        wake: Callable[[str], None],
        connections: ClusterConnections,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.wake = wake
        self.connections = connections
        self._idle_checks: dict[str, dict[str, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin checking in the background."""
        self._task = asyncio.create_task(self._loop(), name="autoscaler")

    async def close(self) -> None:
        """Stop checking; the worker sets stay as they are."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        await every(lambda: self.settings.adaptive_interval_seconds, self.check, "adaptive check")

    async def check(self) -> None:
        """One round: decide for every adaptive cluster at once."""
        clusters = await self._db(records.adaptive_clusters)
        live = {c[0] for c in clusters}
        for gone in set(self._idle_checks) - live:
            del self._idle_checks[gone]
        results = await asyncio.gather(
            *(self._check_one(*c) for c in clusters), return_exceptions=True
        )
        for cluster, result in zip(clusters, results, strict=True):
            if isinstance(result, Exception):
                log.warning("adaptive scaling of %s failed: %r", cluster[0], result)

    async def _check_one(
        self,
        resource_id: str,
        engine_name: str,
        endpoints: dict[str, str],
        current: list[str],
        bounds: Adaptive,
    ) -> None:
        engine = engine_of(engine_name)
        async with await self.connections.calls(resource_id, engine, endpoints) as scheduler:
            try:
                wanted = await scheduler.adaptive_target()
                connected = await scheduler.workers()
                target = bounds.clamp(wanted)
                idle = await scheduler.idle_workers(target) if target < len(current) else []
            except Exception as exc:  # a scheduler that cannot answer is asked next time
                log.info(
                    "scheduler of %s did not answer (%r); skipping this check", resource_id, exc
                )
                return
            checks = self._idle_checks.setdefault(resource_id, {})
            counts = {n: checks.get(n, 0) + 1 for n in idle}
            checks.clear()
            checks.update(counts)
            running = {n for n, status in connected.items() if status == "running"}
            wait = self.settings.adaptive_wait_count
            scaling = decide(current, wanted, bounds, running, idle, counts, wait)
            if scaling is not None and scaling.retire:
                retired = await scheduler.retire(scaling.retire)
                # A worker whose data could not be moved elsewhere stays.
                scaling = scaling.keeping([n for n in scaling.retire if n not in retired])
        if scaling is None:
            return
        for name in scaling.retire:
            checks.pop(name, None)
        changed = await self._db(
            records.change_workers, resource_id, current, scaling.workers, scaling.reason
        )
        if changed:
            log.info("%s: %s", resource_id[:8], scaling.reason)
            self.wake(resource_id)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await in_transaction(self.sessions, fn, *args)
