"""Idle detection: resources with ``auto_shutoff`` are stopped when they do nothing.

A resource is active at a sample when one of its GPUs is above the idle
utilisation threshold, its cluster works (each engine names the metrics that
say so: a Dask scheduler runs or finished tasks; Ray tasks, actors or jobs
run), or (in a workspace) a Jupyter kernel is busy; a busy kernel counts whether or not a
browser is attached. A resource idle for its whole ``auto_shutoff`` is
stopped with a reason that says so, and the GPU time it gave back is
recorded. Nothing is judged idle without recent samples (a silent resource
may just have lost its sampler), and after a control-plane restart the
clock starts again: idleness is never guessed from before.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service.config import Settings
from service.core.control.periodic import every
from service.core.control.state import SERVING, Status, Target, set_status
from service.core.control.tasks import cancel_all
from service.database.db import in_transaction
from service.database.models import Reclaim, Resource, utcnow
from service.engines import ENGINES, engine_of
from service.monitoring.chunks import Chunk
from service.monitoring.series import Latest, SourceReading
from service.recipes.models import RecipeInvalid, parse_recipe
from service.recipes.units import parse_duration

log = logging.getLogger(__name__)

# Metrics above 0 that mean work, and counters that mean work when they move.
BUSY_METRICS = ("jupyter_kernels_busy", *(m for e in ENGINES.values() for m in e.busy_metrics))
DONE_METRICS = tuple(e.done_metric for e in ENGINES.values() if e.done_metric)


def active_at(chunk: Chunk, previous: SourceReading | None, gpu_idle_percent: float) -> float:
    """The last time in ``chunk`` the resource was doing work; 0 if it never was."""
    busy = 0.0
    floors = [("gpu_utilization_percent", gpu_idle_percent)]
    for metric, floor in floors + [(m, 0.0) for m in BUSY_METRICS]:
        for at, value in chunk.points(metric):
            if value > floor:
                busy = max(busy, at)
    for metric in DONE_METRICS:
        before = previous.values.get(metric) if previous else None
        for at, done in chunk.points(metric):
            if before is not None and done != before:  # work finished in between
                busy = max(busy, at)
            before = done
    return busy


def shutoff_seconds(recipe: dict[str, object]) -> float | None:
    """The recipe's ``auto_shutoff`` in seconds; None for ``never``."""
    spec = recipe.get("spec")
    value = spec.get("auto_shutoff", "never") if isinstance(spec, dict) else "never"
    seconds = parse_duration(str(value))
    return seconds if seconds and math.isfinite(seconds) else None


def idle_reason(idle_seconds: float, gpu_idle_percent: float, recipe: dict[str, object]) -> str:
    """The status reason of an idle stop, in plain words."""
    parts = [f"GPU utilisation ≤ {gpu_idle_percent:g} %"]
    try:
        cluster = parse_recipe(recipe).cluster
    except RecipeInvalid:  # stored before a change of the recipe's rules: say less
        cluster = None
    if cluster is not None:
        parts.append(engine_of(cluster.engine).idle_words)
    if recipe.get("type") == "workspace":
        parts.append("no busy kernel")
    return f"idle for {_duration(idle_seconds)}: {', '.join(parts)}"


@dataclass
class Activity:
    """When each resource was last seen working (epoch seconds), in memory."""

    started: float  # the control plane's start: nothing is judged idle from before
    last: dict[str, float]
    lock: threading.Lock

    @classmethod
    def begin(cls, now: float) -> Activity:
        """Tracking that starts at ``now``."""
        return cls(now, {}, threading.Lock())

    def saw(self, resource_id: str, at: float) -> None:
        """Record work seen at ``at``."""
        with self.lock:
            if at > self.last.get(resource_id, 0.0):
                self.last[resource_id] = at

    def idle_since(self, resource_id: str, running_since: float) -> float:
        """Since when the resource has done nothing, as far as is known."""
        with self.lock:
            return max(self.started, running_since, self.last.get(resource_id, 0.0))


def reclaim_idle(
    session: Session,
    now: float,
    activity: Activity,
    heard: dict[str, float],
    silence_seconds: float,
    gpu_idle_percent: float,
) -> list[str]:
    """Stop every running (or degraded) resource idle for its ``auto_shutoff``; the ids
    stopped."""
    stopped = []
    running = session.scalars(
        select(Resource)
        .options(selectinload(Resource.processes))
        .where(Resource.target == Target.RUNNING, Resource.status.in_(SERVING))
    )
    for resource in running:
        limit = shutoff_seconds(resource.recipe)
        if limit is None or now - heard.get(resource.id, -math.inf) > silence_seconds:
            continue
        since = activity.idle_since(resource.id, resource.status_changed_at.timestamp())
        idle = now - since
        if idle < limit:
            continue
        gpus = sum(len(process.gpus) * process.gpu_share for process in resource.processes)
        reason = idle_reason(idle, gpu_idle_percent, resource.recipe)
        session.add(
            Reclaim(
                resource_id=resource.id,
                idle_seconds=idle,
                gpus=math.ceil(gpus),
                gpu_seconds=gpus * idle,
                reason=reason,
            )
        )
        resource.target = Target.STOPPED
        resource.target_reason = reason
        resource.updated_at = utcnow()
        set_status(session, resource, Status.STOPPING, reason)
        stopped.append(resource.id)
    return stopped


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


class IdleReclaim:
    """Beside the reconciler: every ``idle_check_seconds``, stops what was idle for its
    whole ``auto_shutoff`` (judged from the activity and samples the monitor records),
    and wakes the reconciler to stop it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        activity: Activity,
        latest: Latest,
        wake: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.activity = activity
        self.latest = latest
        self.wake = wake
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start checking in the background."""
        loop = every(lambda: self.settings.idle_check_seconds, self.check, "idle check", True)
        self._tasks.append(asyncio.create_task(loop, name="idle-reclaim"))

    async def close(self) -> None:
        """Stop checking."""
        await cancel_all(self._tasks)

    async def check(self) -> list[str]:
        """One pass: the ids of the resources it stopped."""
        settings = self.settings
        stopped: list[str] = await in_transaction(
            self.sessions,
            reclaim_idle,
            self.clock(),
            self.activity,
            dict(self.latest.received),
            settings.telemetry_silence_seconds,
            settings.idle_gpu_utilisation_percent,
        )
        for resource_id in stopped:
            log.info("stopping idle resource %s", resource_id)
            self.latest.forget(resource_id)
            self.wake(resource_id)
        return stopped
