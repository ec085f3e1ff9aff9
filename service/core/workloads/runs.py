"""A job's runs behind the API: its history, one run, and "run it now".

Reads check access like every resource read; "run now" records a manual run in one
transaction and wakes the reconciler, following the job's ``concurrency_policy`` when a
run is still going (see :mod:`~service.core.control.run_rules`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.core.control.records import lock_resource
from service.core.control.run_rules import Trigger, WhenBusy, when_due, why_skipped
from service.core.identity.access import Principal, require_user
from service.core.workloads import job_runs
from service.core.workloads.resources import ResourceService
from service.database.models import JobRun
from service.errors import Conflict, NotFound

MOST_LISTED = 1000


class RunService:
    """The runs of jobs a caller may see, and manual runs of jobs they may change."""

    def __init__(self, resources: ResourceService) -> None:
        self.resources = resources
        self.sessions = resources.sessions

    def list(
        self, principal: Principal, name: str, owner: str | None, limit: int = MOST_LISTED
    ) -> list[dict[str, Any]]:
        """The job's runs, newest first (at most ``limit``; the history keeps
        ``TITAN_JOB_RUNS_KEPT`` per job)."""
        with self.sessions() as session:
            resource = self.resources.load(session, principal, "job", name, owner)
            query = (
                select(JobRun)
                .where(JobRun.resource_id == resource.id)
                .order_by(JobRun.number.desc())
                .limit(limit)
            )
            return [job_runs.run_view(run, resource) for run in session.scalars(query)]

    def get(
        self, principal: Principal, name: str, owner: str | None, number: int
    ) -> dict[str, Any]:
        """One run of the job; NotFound if it has no such run (or it was trimmed)."""
        with self.sessions() as session:
            resource = self.resources.load(session, principal, "job", name, owner)
            run = job_runs.run_of(session, resource.id, number)
            if run is None:
                raise NotFound(
                    f"job {name!r} has no run {number}; `titan runs job/{name}` lists them"
                )
            return job_runs.run_view(run, resource)

    def run_now(self, principal: Principal, name: str, owner: str | None) -> dict[str, Any]:
        """Begin a manual run of the job now. With a run still going: Conflict under
        ``Forbid``; under ``Replace`` that run is stopped and this one begins; under
        ``Allow`` this one begins alongside, unless ``max_concurrent_runs`` go on already
        or it would not fit in the owner's quota (Conflict)."""
        require_user(principal)
        service = self.resources
        with service.admitting, self.sessions.begin() as session:
            resource = service.load(session, principal, "job", name, owner, change=True)
            if resource.target == "deleted":
                raise Conflict(f"job {name!r} is being deleted")
            lock_resource(session, resource.id)  # no run ends or begins meanwhile
            policy = job_runs.run_policy(resource.recipe)
            running = [run.number for run in job_runs.open_runs(session, resource.id)]
            action = when_due(policy.concurrency, len(running), policy.most_runs)
            if action == WhenBusy.SKIP:
                busy = why_skipped(policy.concurrency, running, policy.most_runs, now=True)
                raise Conflict(
                    f"job {name!r}: {busy}; wait for it, stop it (`titan stop job/{name}`), "
                    "or change the recipe's "
                    "concurrency_policy ('Replace', or 'Allow' with max_concurrent_runs)"
                )
            if action == WhenBusy.REPLACE:
                job_runs.replace_run(session, resource, "a manual run")
            else:
                allow = policy.concurrency == "Allow"
                catalog = service.settings.instance_types if allow else None
                job_runs.admit(session, resource, service.settings.default_quota, catalog)
            kept = service.settings.job_runs_kept
            run = job_runs.begin_run(session, resource, Trigger.MANUAL, kept)
            view = job_runs.run_view(run, resource)
            resource_id = resource.id
        service.wake(resource_id)
        return view
