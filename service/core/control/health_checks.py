"""Deployments' health checks, and their request metrics into the monitoring store.

A loop keeps the :class:`~service.core.workloads.serving.ServingTable` in step
with the store (every running deployment, its routes and running replicas) and
checks each replica on its recipe's interval: ``GET <health path>`` answering
2xx or 3xx within the timeout passes. A replica gets traffic once it passes;
one failing ``failures`` checks in a row (counted once it has passed, or its
``start_period`` is over) is unhealthy: no traffic, and the reconciler is woken
to replace it (or to stop a rollout). Every ``report_seconds`` the requests,
errors and latency the front door counted per deployment go to the monitoring
store as samples of the deployment (source ``deploy:front_door``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service.core.control.periodic import every
from service.core.control.state import Phase, Target
from service.core.control.tasks import cancel_all
from service.core.workloads.programs import REPLICA
from service.core.workloads.replicas import Health, is_replica
from service.core.workloads.serving import Check, Counts, Replica, ServedRow, ServingTable
from service.database.db import in_transaction
from service.database.models import Group, GroupMember, Resource, User

log = logging.getLogger(__name__)
TICK = 0.2  # seconds between passes; each replica is checked on its own interval
IDLE_REFRESH = 2.0  # seconds between looks at the store while no deployment runs
# Report: (resource id, seconds since the last report, counts then, counts now).
Report = Callable[[str, float, Counts, Counts], None]


class HealthChecker:
    """Checks deployments' replicas and keeps the serving table current."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        table: ServingTable,
        wake: Callable[[str], None],
        report: Report | None = None,
        report_seconds: Callable[[], float] = lambda: 10.0,
    ) -> None:
        self.sessions = sessions
        self.table = table
        self.wake = wake
        self.report = report
        self.report_seconds = report_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self._reported: dict[str, tuple[float, Counts]] = {}
        self._refreshed = 0.0

    def start(self) -> None:
        """Begin checking (and reporting, where given a report)."""
        self._http = httpx.AsyncClient(follow_redirects=False)
        self._tasks.append(asyncio.create_task(every(TICK, self.check_once, "health checks")))
        if self.report is not None:
            self._tasks.append(
                asyncio.create_task(
                    every(self.report_seconds, self.report_once, "deployment metrics", True)
                )
            )

    async def close(self) -> None:
        """Stop checking."""
        await cancel_all(self._tasks)
        if self._http is not None:
            await self._http.aclose()

    async def refresh(self) -> None:
        """Take the running deployments and their replicas from the store now."""
        self._refreshed = time.monotonic()
        self.table.refresh(await in_transaction(self.sessions, served_rows))

    async def check_once(self) -> None:
        """Refresh the table from the store (seldom while no deployment runs: the front
        door refreshes it on a miss), then check every replica that is due."""
        if self.table.deployments() or time.monotonic() - self._refreshed > IDLE_REFRESH:
            await self.refresh()
        now = time.monotonic()
        due = [
            (served.resource_id, served.check, replica)
            for served in self.table.deployments()
            for replica in served.replicas.values()
            if replica.next_check <= now and not replica.draining
        ]
        if due:
            await asyncio.gather(*(self._check(*one) for one in due))

    async def _check(self, resource_id: str, check: Check, replica: Replica) -> None:
        assert self._http is not None
        replica.next_check = time.monotonic() + check.interval
        try:
            answer = await self._http.get(replica.url + check.path, timeout=check.timeout)
            error = "" if answer.status_code < 400 else f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        before = replica.health
        if not error:
            replica.health, replica.failures, replica.passed_once = Health.HEALTHY, 0, True
            replica.last_error = ""
        else:
            replica.last_error = error
            started = time.monotonic() - replica.first_seen
            if replica.passed_once or started > check.start_period:
                replica.failures += 1
            if replica.failures >= check.failures:
                replica.health = Health.FAILED
            elif replica.passed_once:
                replica.health = Health.UNKNOWN  # failing: no traffic until it passes again
        if replica.health != before:
            log.info(
                "deployment %s: replica %s is %s%s",
                resource_id[:8],
                replica.name,
                replica.health,
                f" ({error})" if error else "",
            )
            self.wake(resource_id)

    async def report_once(self) -> None:
        """Send each deployment's requests, errors and latency since the last report."""
        assert self.report is not None
        now = time.monotonic()
        for served in self.table.deployments():
            then, counts = self._reported.get(served.resource_id, (now, Counts()))
            current = _copy(served.counts)
            self._reported[served.resource_id] = (now, current)
            if now > then:
                seconds = now - then
                await asyncio.to_thread(self.report, served.resource_id, seconds, counts, current)


def _copy(counts: Counts) -> Counts:
    return Counts(counts.requests, counts.errors, counts.seconds, list(counts.buckets))


def served_rows(session: Session) -> list[ServedRow]:
    """Every deployment that should run, with its running replicas, as the table takes it."""
    resources = session.scalars(
        select(Resource)
        .options(selectinload(Resource.processes))
        .where(Resource.type == "deployment", Resource.target == Target.RUNNING)
    ).all()
    rows = []
    for resource in resources:
        spec: dict[str, Any] = resource.recipe.get("spec", {})
        check = spec.get("health_check", {})
        replicas = [
            (p.name, str(p.endpoints[REPLICA]).rstrip("/"), p.started_at.isoformat())
            for p in resource.processes
            if is_replica(p.name) and p.state == Phase.RUNNING and REPLICA in (p.endpoints or {})
        ]
        routes = [(r["path"], r["visibility"]) for r in spec.get("routes", [])]
        rows.append(
            ServedRow(
                resource.id,
                resource.owner,
                resource.name,
                routes,
                owner_groups(session, resource.owner),
                Check(**check),
                replicas,
            )
        )
    return rows


def owner_groups(session: Session, owner: str) -> frozenset[str]:
    """The groups whose members a ``group`` route lets in: those user ``owner`` is in, or
    the group ``owner`` itself."""
    names = session.scalars(
        select(Group.name)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .join(User, User.id == GroupMember.user_id)
        .where(User.name == owner)
    ).all()
    is_group = session.scalar(select(Group.id).where(Group.name == owner)) is not None
    return frozenset(names) | ({owner} if is_group else set())
