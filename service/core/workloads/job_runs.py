"""The records of a job's runs: begun, ended, skipped or missed, and how long they are kept.

Every function runs inside a session the caller opens, so a run's row and the change
that starts or stops its processes commit together: a control plane killed at any moment
neither loses a run nor starts one twice. While a run is open (no ``finished_at``) the
job's processes belong to it; when they end, the reconciler closes it with their exit
code. A job holds one open run at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.core.capacity.limits import QuotaLimits
from service.core.capacity.quotas import check_running_count
from service.core.control.due_times import Schedule
from service.core.control.run_rules import RunStatus, Trigger
from service.core.control.state import Phase, Status, Target, set_status
from service.core.identity.users import check_owner_enabled
from service.database.models import JobRun, Resource, utcnow
from service.recipes.models import JobSpec, parse_recipe
from service.recipes.units import parse_duration

REPLACED = "replaced"  # a job process's spec_hash once a newer run replaces it: it stops


@dataclass(frozen=True)
class RunPolicy:
    """A job recipe's run settings, with their defaults filled in."""

    schedule: Schedule | None
    concurrency: str  # Forbid | Replace
    starting_deadline: timedelta
    retries: int
    retry_backoff: timedelta
    timeout: timedelta | None
    suspend: bool


def run_policy(recipe: dict[str, Any], time_scale: float = 1.0) -> RunPolicy:
    """The run settings of a stored job recipe (``time_scale``: see :class:`Schedule`)."""
    spec = parse_recipe(recipe).spec
    assert isinstance(spec, JobSpec)
    schedule = None
    if spec.schedule is not None:
        schedule = Schedule(spec.schedule, spec.timezone or "UTC", time_scale)
    timeout = parse_duration(spec.timeout or "never")
    return RunPolicy(
        schedule=schedule,
        concurrency=spec.concurrency_policy or "Forbid",
        starting_deadline=timedelta(seconds=parse_duration(spec.starting_deadline or "1h") or 0),
        retries=spec.retries or 0,
        retry_backoff=timedelta(seconds=parse_duration(spec.retry_backoff or "10s") or 0),
        timeout=None if timeout is None else timedelta(seconds=timeout),
        suspend=bool(spec.suspend),
    )


def schedule_view(recipe: dict[str, Any], now: datetime, time_scale: float = 1.0) -> dict[str, Any]:
    """A job recipe's run settings as people read them, defaults filled in: ``schedule``
    (None: it runs when applied or asked), ``timezone``, ``suspended``, ``next_due`` (the
    schedule's next due time after ``now``, UTC; None without a schedule or while
    suspended), ``concurrency_policy``, ``retries``, ``retry_backoff``, ``timeout`` (None:
    never) and ``starting_deadline``."""
    policy = run_policy(recipe, time_scale)
    spec = recipe.get("spec") or {}
    schedule = policy.schedule
    next_due = None
    if schedule is not None and not policy.suspend:
        next_due = schedule.next_after(now)
    return {
        "schedule": schedule.cron if schedule is not None else None,
        "timezone": schedule.timezone if schedule is not None else None,
        "suspended": policy.suspend,
        "next_due": next_due,
        "concurrency_policy": policy.concurrency,
        "retries": policy.retries,
        "retry_backoff": spec.get("retry_backoff") or "10s",
        "timeout": spec.get("timeout") if policy.timeout is not None else None,
        "starting_deadline": spec.get("starting_deadline") or "1h",
    }


def is_scheduled(recipe: dict[str, Any]) -> bool:
    """Whether a stored recipe is a job with a schedule (applying it starts no run)."""
    return recipe.get("type") == "job" and bool((recipe.get("spec") or {}).get("schedule"))


def schedule_key(recipe: dict[str, Any]) -> tuple[Any, ...] | None:
    """What, when it changes, starts a job's schedule counting afresh: its schedule, time
    zone and suspension (None: no schedule)."""
    if not is_scheduled(recipe):
        return None
    spec = recipe["spec"]
    return spec.get("schedule"), spec.get("timezone"), bool(spec.get("suspend"))


def open_number(session: Session, resource_id: str) -> int | None:
    """The number of the job's open run, if any (its outputs go to a folder of that name)."""
    run = open_run(session, resource_id)
    return run.number if run is not None else None


def open_run(session: Session, resource_id: str) -> JobRun | None:
    """The job's run that has not ended, if any."""
    return session.scalar(
        select(JobRun)
        .where(JobRun.resource_id == resource_id, JobRun.finished_at.is_(None))
        .order_by(JobRun.number.desc())
        .limit(1)
    )


def latest_run(session: Session, resource_id: str) -> JobRun | None:
    """The job's newest run that began (skipped and missed ones never began)."""
    return session.scalar(
        select(JobRun)
        .where(JobRun.resource_id == resource_id, JobRun.started_at.is_not(None))
        .order_by(JobRun.number.desc())
        .limit(1)
    )


def run_of(session: Session, resource_id: str, number: int) -> JobRun | None:
    """The job's run ``number``, if it is kept."""
    return session.scalar(
        select(JobRun).where(JobRun.resource_id == resource_id, JobRun.number == number)
    )


def last_due(session: Session, resource_id: str) -> datetime | None:
    """The newest due time the job's schedule already handled (ran, skipped or missed)."""
    return session.scalar(
        select(func.max(JobRun.scheduled_for)).where(JobRun.resource_id == resource_id)
    )


def _next_number(session: Session, resource_id: str) -> int:
    newest = session.scalar(
        select(func.max(JobRun.number)).where(JobRun.resource_id == resource_id)
    )
    return (newest or 0) + 1


def admit(session: Session, resource: Resource, default_quota: QuotaLimits) -> None:
    """Conflict unless a run of the job may begin now: its owner is enabled and, if it is
    not running already, it fits the owner's count of running resources."""
    if resource.target != Target.RUNNING:
        check_owner_enabled(session, resource.owner)
        check_running_count(session, resource.owner, default_quota)


def begin_run(
    session: Session,
    resource: Resource,
    trigger: Trigger,
    keep: int,
    scheduled_for: datetime | None = None,
    attempt: int = 1,
) -> JobRun:
    """A new run of the job, open, with the job set to run: its exited processes are
    forgotten so the reconciler starts them afresh; the history keeps the newest ``keep``
    runs. The caller decided that no other run is open (or replaced it)."""
    now = utcnow()
    run = JobRun(
        resource_id=resource.id,
        number=_next_number(session, resource.id),
        trigger=trigger,
        scheduled_for=scheduled_for,
        attempt=attempt,
        generation=resource.generation,
        status=RunStatus.RUNNING,
        reason="",
        created_at=now,
        started_at=now,
    )
    session.add(run)
    for process in list(resource.processes):
        if process.state == Phase.EXITED:
            resource.processes.remove(process)
    resource.target = Target.RUNNING
    resource.target_reason = ""
    resource.failures = 0  # a new run starts now, not after an earlier run's backoff
    resource.next_attempt_at = None
    resource.updated_at = now
    what = f"run {run.number} begins ({trigger}"
    what += f", attempt {attempt})" if attempt > 1 else ")"
    set_status(session, resource, Status.PENDING, what)
    session.flush()
    trim_runs(session, resource.id, keep)
    return run


def record_unrun(
    session: Session,
    resource: Resource,
    status: RunStatus,
    scheduled_for: datetime,
    reason: str,
    keep: int,
) -> JobRun:
    """A due time that did not run (skipped or missed), recorded with why; the history
    keeps the newest ``keep`` runs."""
    now = utcnow()
    run = JobRun(
        resource_id=resource.id,
        number=_next_number(session, resource.id),
        trigger=Trigger.SCHEDULE,
        scheduled_for=scheduled_for,
        attempt=1,
        generation=resource.generation,
        status=status,
        reason=reason,
        created_at=now,
        finished_at=now,
    )
    session.add(run)
    session.flush()
    trim_runs(session, resource.id, keep)
    return run


def close_run(
    session: Session,
    resource: Resource,
    status: RunStatus,
    reason: str,
    exit_code: int | None = None,
) -> JobRun | None:
    """End the job's open run (a no-op without one), keeping its job process's handle so
    that its logs stay readable after the next run starts."""
    run = open_run(session, resource.id)
    if run is None:
        return None
    job = next((p for p in resource.processes if p.name == "job"), None)
    if job is not None and job.handle:
        run.handle = dict(job.handle)
    run.status = status
    run.reason = reason
    run.exit_code = exit_code
    run.finished_at = utcnow()
    return run


def replace_run(session: Session, resource: Resource, by: str) -> None:
    """End the open run as replaced (``by`` says by what) and mark its job process for
    stopping: the reconciler stops a process whose spec it no longer asks for."""
    close_run(
        session, resource, RunStatus.STOPPED, f"replaced by {by} (concurrency_policy Replace)"
    )
    for process in resource.processes:
        if process.state != Phase.EXITED:
            process.spec_hash = REPLACED


def trim_runs(session: Session, resource_id: str, keep: int) -> int:
    """Forget the job's oldest ended runs beyond the newest ``keep``; how many went."""
    cutoff = session.scalar(
        select(JobRun.number)
        .where(JobRun.resource_id == resource_id)
        .order_by(JobRun.number.desc())
        .offset(keep)
        .limit(1)
    )
    if cutoff is None:
        return 0
    result = session.execute(
        delete(JobRun).where(
            JobRun.resource_id == resource_id,
            JobRun.number <= cutoff,
            JobRun.finished_at.is_not(None),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def run_view(run: JobRun, resource: Resource) -> dict[str, Any]:
    """A run as the API shows it."""
    return {
        "number": run.number,
        "trigger": run.trigger,
        "status": run.status,
        "reason": run.reason,
        "attempt": run.attempt,
        "generation": run.generation,
        "scheduled_for": _iso(run.scheduled_for),
        "created_at": run.created_at.isoformat(),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "exit_code": run.exit_code,
        "telemetry": _telemetry_window(run, resource),
    }


def _telemetry_window(run: JobRun, resource: Resource) -> str | None:
    """The API path of the run's samples in the monitoring store, of one metric (change
    ``metric=``; `titan metrics` lists them); None: it never ran."""
    if run.started_at is None:
        return None
    window = f"from={run.started_at.timestamp():.3f}"
    if run.finished_at is not None:
        window += f"&to={run.finished_at.timestamp():.3f}"
    base = f"/api/v1/resources/job/{resource.name}/telemetry?owner={resource.owner}"
    return f"{base}&{window}&metric=host_cpu_percent"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
