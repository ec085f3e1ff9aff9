"""Beside the reconciler: begins the runs jobs are due for, and ends those over their time.

Every ``schedule_tick_seconds``, for each job, in one transaction of its own:

1. an open run past the recipe's ``timeout`` is recorded as timed out and its process is
   stopped (the job is set to stop when no other run goes on);
2. a run that failed, timed out or was lost, with retries left, is run again once its
   backoff has passed (trigger ``retry``): the latest run, or under ``Allow`` every such
   run (each failure gets its own retries);
3. the due times of its ``schedule`` since the last one handled are settled by
   :func:`~service.core.control.due_times.catch_up` (the latest runs if within
   ``starting_deadline``, the rest are recorded as missed), and the one to run follows
   the ``concurrency_policy`` (see :mod:`~service.core.control.run_rules`).

Everything it decides is a row in ``job_runs`` written with the change it makes, so a
control plane killed at any point neither repeats nor loses a due time: a due time with a
row is never handled again. Nothing is kept in memory between ticks.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.config import InstanceType, Settings
from service.core.control import records
from service.core.control.due_times import catch_up
from service.core.control.periodic import every
from service.core.control.run_rules import (
    RunStatus,
    Trigger,
    WhenBusy,
    awaiting_retry,
    retries_left,
    retry_delay,
    when_due,
    why_skipped,
)
from service.core.control.state import Target
from service.core.control.tasks import cancel_all
from service.core.workloads import job_runs
from service.core.workloads.job_runs import RunPolicy
from service.database.models import JobRun, Resource, utcnow
from service.errors import Conflict

log = logging.getLogger(__name__)
MOST_MISSED_ROWS = 10  # after a long outage: one row per missed due time up to this, then one


class Scheduler:
    """Begins scheduled runs and retries, and stops runs past their timeout."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        wake: Callable[[str], None],
        admitting: threading.Lock,
        clock: Callable[[], datetime] = utcnow,
        seen: Callable[[str], bool] = lambda resource_id: True,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.wake = wake
        self.admitting = admitting  # the lock applies and starts hold: one admission at a time
        self.clock = clock
        # Whether the reconciler checked the job since this start: until it has, an open
        # run may have ended while the control plane was away, so no due time is decided.
        self.seen = seen
        self._tasks: list[asyncio.Task[None]] = []
        self._dry = False  # deciding without acting: nothing is logged

    @property
    def kept(self) -> int:
        """Runs kept per job (TITAN_JOB_RUNS_KEPT)."""
        return self.settings.job_runs_kept

    def start(self) -> None:
        """Start ticking in the background."""
        loop = every(lambda: self.settings.schedule_tick_seconds, self.tick, "job schedules")
        self._tasks.append(asyncio.create_task(loop, name="job-schedules"))

    async def close(self) -> None:
        """Stop ticking; runs already begun go on."""
        await cancel_all(self._tasks)

    async def tick(self) -> list[str]:
        """One pass over every job; the ids of those it changed (and woke)."""
        changed = []
        for resource_id in await asyncio.to_thread(self._jobs):
            try:
                if await asyncio.to_thread(self._settle, resource_id):
                    changed.append(resource_id)
                    self.wake(resource_id)
            except Exception:  # one job's trouble never holds up the others
                log.exception("job %s: its schedule could not be settled", resource_id[:8])
        return changed

    def _jobs(self) -> list[str]:
        query = select(Resource.id, Resource.recipe).where(
            Resource.type == "job", Resource.target != Target.DELETED
        )
        with self.sessions() as session:
            return [id for id, recipe in session.execute(query) if _has_run_settings(recipe)]

    def _settle(self, resource_id: str) -> bool:
        """Settle one job; whether anything changed. Decided first without a lock (most
        ticks change nothing, and then write nothing), then, if something changes, again
        with the job locked, so that no run ends or begins between reading and writing."""
        now = self.clock()
        with self.admitting:
            with self.sessions() as session:  # a dry run: never committed, says nothing
                self._dry = True
                try:
                    resource = records.load_resource(session, resource_id)
                    if not self._decide(session, resource, now):
                        return False
                finally:
                    self._dry = False
            with self.sessions.begin() as session:
                return self._decide(session, records.lock_resource(session, resource_id), now)

    def _say(self, level: int, message: str, *args: object) -> None:
        if not self._dry:
            log.log(level, message, *args)

    def _decide(self, session: Session, resource: Resource | None, now: datetime) -> bool:
        if resource is None or resource.target == Target.DELETED:
            return False
        policy = job_runs.run_policy(resource.recipe, self.settings.schedule_time_scale)
        changed = self._time_out(session, resource, policy, now)
        # The schedule first: a scheduled run begun supersedes a retry.
        changed = self._schedule(session, resource, policy, now) or changed
        return self._retry(session, resource, policy, now) or changed

    def _time_out(
        self, session: Session, resource: Resource, policy: RunPolicy, now: datetime
    ) -> bool:
        if policy.timeout is None or not self.seen(resource.id):
            return False  # unseen: a run may have ended in time while the control plane was away
        changed = False
        for run in job_runs.open_runs(session, resource.id):
            if run.started_at is None or now - run.started_at < policy.timeout:
                continue
            took = _seconds(policy.timeout.total_seconds())
            why = f"run {run.number} timed out: it ran longer than its timeout ({took}) and "
            why += "was stopped"
            process = job_runs.process_of(session, resource, run)
            job_runs.close_run(session, resource, RunStatus.TIMED_OUT, why, process=process)
            changed = True
            self._say(logging.INFO, "job %s: %s", resource.key, why)
            if job_runs.open_run(session, resource.id) is None:
                resource.target = Target.STOPPED  # the reconciler stops its processes
                resource.target_reason = why
            # else (Allow): its job-N is asked for no more, so the reconciler stops it
        return changed

    def _retry(
        self, session: Session, resource: Resource, policy: RunPolicy, now: datetime
    ) -> bool:
        if policy.concurrency == "Allow":
            waiting = awaiting_retry(job_runs.begun_runs(session, resource.id), policy.retries)
        elif job_runs.open_run(session, resource.id) is None:
            last = job_runs.latest_run(session, resource.id)
            waiting = [last] if last is not None and last.finished_at is not None else []
            waiting = [r for r in waiting if retries_left(r.status, r.attempt, policy.retries)]
        else:
            return False
        changed = False
        for last in waiting:  # each failure, under Allow; else the latest run's
            assert last.finished_at is not None
            if now < last.finished_at + retry_delay(policy.retry_backoff, last.attempt):
                continue
            if not self._retry_one(session, resource, policy, last):
                break  # waits for room: the later ones wait too
            changed = True
        return changed

    def _retry_one(
        self, session: Session, resource: Resource, policy: RunPolicy, last: JobRun
    ) -> bool:
        """Begin the retry of run ``last`` if it may begin now; whether it began."""
        running = len(job_runs.open_runs(session, resource.id))
        if running >= policy.most_runs:
            self._say(
                logging.INFO,
                "job %s: retry of run %d waits: %d runs go on (max_concurrent_runs)",
                resource.key,
                last.number,
                running,
            )
            return False
        try:
            job_runs.admit(session, resource, self.settings.default_quota, self._catalog(policy))
        except Conflict as exc:
            self._say(
                logging.WARNING, "job %s: retry of run %d waits: %s", resource.key, last.number, exc
            )
            return False
        run = job_runs.begin_run(
            session, resource, Trigger.RETRY, self.kept, attempt=last.attempt + 1
        )
        self._say(
            logging.INFO, "job %s: run %d retries run %d", resource.key, run.number, last.number
        )
        return True

    def _schedule(
        self, session: Session, resource: Resource, policy: RunPolicy, now: datetime
    ) -> bool:
        if policy.schedule is None or policy.suspend:
            return False
        handled = job_runs.last_due(session, resource.id)
        begun = resource.schedule_since or resource.created_at
        since = max(handled, begun) if handled else begun
        due = catch_up(policy.schedule, since, now, policy.starting_deadline)
        self._record_missed(session, resource, due.missed, due.missed_more)
        if due.run is None:
            return bool(due.missed)
        running = [run.number for run in job_runs.open_runs(session, resource.id)]
        if running and not self.seen(resource.id):
            return bool(due.missed)  # decided once the reconciler has seen if it still runs
        action = when_due(policy.concurrency, len(running), policy.most_runs)
        if action == WhenBusy.SKIP:
            why = why_skipped(policy.concurrency, running, policy.most_runs)
            job_runs.record_unrun(session, resource, RunStatus.SKIPPED, due.run, why, self.kept)
            return True
        if action == WhenBusy.START:
            try:
                catalog = self._catalog(policy)
                job_runs.admit(session, resource, self.settings.default_quota, catalog)
            except Conflict as exc:
                job_runs.record_unrun(
                    session, resource, RunStatus.SKIPPED, due.run, str(exc), self.kept
                )
                return True
        else:
            job_runs.replace_run(session, resource, "a scheduled run")
        run = job_runs.begin_run(
            session, resource, Trigger.SCHEDULE, self.kept, scheduled_for=due.run
        )
        self._say(logging.INFO, "job %s: run %d begins (due %s)", resource.key, run.number, due.run)
        return True

    def _catalog(self, policy: RunPolicy) -> dict[str, InstanceType] | None:
        """The instance types, where a run may begin beside others (see ``admit``)."""
        return self.settings.instance_types if policy.concurrency == "Allow" else None

    def _record_missed(
        self, session: Session, resource: Resource, missed: list[datetime], more: bool
    ) -> None:
        """Rows for the due times missed: one each, or for many only the newest, naming
        how many went before it."""
        if not missed:
            return
        shown = missed if len(missed) <= MOST_MISSED_ROWS and not more else missed[-1:]
        earlier = len(missed) - len(shown)
        for at in shown:
            why = "missed: the control plane was away and it is past its starting_deadline"
            if earlier:
                since = missed[0].isoformat()
                why += f"; {'at least ' if more else ''}{earlier} earlier due times since "
                why += f"{since} were missed too"
            job_runs.record_unrun(session, resource, RunStatus.MISSED, at, why, self.kept)
        self._say(logging.WARNING, "job %s: %d due time(s) missed", resource.key, len(missed))


def _has_run_settings(recipe: dict[str, object]) -> bool:
    """Whether a job recipe asks for anything the scheduler does: a schedule, retries
    or a timeout."""
    spec = recipe.get("spec")
    if not isinstance(spec, dict):
        return False
    return bool(spec.get("schedule") or spec.get("retries") or spec.get("timeout"))


def _seconds(seconds: float) -> str:
    """A duration as a person reads it: 45s, 90m, 2h."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
