"""A job's runs: its history, one run, and starting one now."""

from __future__ import annotations

import builtins
from typing import Any

from service.client.calls import Call
from service.client.resources import ResourceRef, about, as_ref
from service.client.transport import Transport


class Runs(Transport):
    """Runs of jobs (``/api/v1/resources/job/{name}/runs``)."""

    async def runs(
        self, ref: ResourceRef | str, limit: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The job's runs, newest first: ``number``, ``trigger`` (schedule, manual, retry),
        ``status``, ``reason``, ``scheduled_for``, ``started_at``, ``finished_at``,
        ``exit_code``, ``attempt`` and ``telemetry`` (where its samples are)."""
        result: builtins.list[dict[str, Any]] = await self.send(about(ref, "runs", limit=limit))
        return result

    async def job_run(self, ref: ResourceRef | str, number: int) -> dict[str, Any]:
        """Run ``number`` of the job (as :meth:`runs` lists it)."""
        result: dict[str, Any] = await self.send(about(ref, f"runs/{int(number)}"))
        return result

    async def run(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Begin a run of the job now (trigger ``manual``); the run. ConflictError while a
        run goes on and the job's concurrency_policy is Forbid (under Replace that run is
        stopped; under Allow it begins alongside, ConflictError once max_concurrent_runs
        go on)."""
        target = as_ref(ref)
        call = Call("POST", f"{target.path}/runs", target.params)
        result: dict[str, Any] = await self.send(call)
        return result
