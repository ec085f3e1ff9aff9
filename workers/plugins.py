"""Activity a sampler reports besides hardware: Dask tasks and busy Jupyter kernels.

``dask scheduler --preload workers.plugins`` runs :func:`dask_setup`: it counts
the scheduler's tasks with a plugin and starts the scheduler's own sampler,
which reports them as the ``dask:scheduler`` source. Idle detection reads
these to tell an idle cluster from a busy one.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from workers.telemetry import Sample, start_from_environment

log = logging.getLogger(__name__)


class TaskActivity(SchedulerPlugin):
    """Counts tasks running now and tasks finished since the scheduler started.

    Plain integer counters, so the sampler thread reads them without locks.
    """

    name = "titan-task-activity"

    def __init__(self) -> None:
        self.processing = 0
        self.completed = 0

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "processing":
            self.processing += 1
        if start == "processing":
            self.processing = max(0, self.processing - 1)
            if finish in ("memory", "erred"):
                self.completed += 1


class SchedulerReader:
    """Samples a scheduler's activity: tasks running, tasks finished, workers."""

    def __init__(self, scheduler: Any, activity: TaskActivity) -> None:
        self.scheduler = scheduler
        self.activity = activity

    def read(self, now: float) -> list[Sample]:
        values = {
            "dask_tasks_processing": float(self.activity.processing),
            "dask_tasks_completed_total": float(self.activity.completed),
            "dask_workers": float(len(self.scheduler.workers)),
        }
        return [Sample(now, "dask:scheduler", values)]


class JupyterReader:
    """Samples a Jupyter server's kernels: how many, and how many are busy right now."""

    def __init__(self, base_url: str, token: str) -> None:
        import httpx

        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"token {token}"}, timeout=5
        )

    def read(self, now: float) -> list[Sample]:
        kernels = self.client.get("api/kernels").raise_for_status().json()
        busy = sum(1 for kernel in kernels if kernel.get("execution_state") == "busy")
        values = {"jupyter_kernels": float(len(kernels)), "jupyter_kernels_busy": float(busy)}
        return [Sample(now, "jupyter", values)]


def dask_setup(scheduler: Any) -> None:
    """Preload hook of ``dask scheduler``: count tasks and start this process's sampler."""
    activity = TaskActivity()
    scheduler.add_plugin(activity)
    sampler = start_from_environment("scheduler", [SchedulerReader(scheduler, activity)])
    if sampler is not None:
        log.info("titan telemetry: sampling every %ss (pid %d)", sampler.interval, os.getpid())
