"""Telemetry in and out: ingest, queries, latest readings, and the background passes.

:class:`Monitor` is what routes call. Samples arrive with a resource's own
token and are stored in one transaction with the alert events they cause.
Two loops run beside the API: compaction (rollups and retention) and silence
alerts with webhook delivery. It records each resource's activity as samples
arrive; idle reclaim (:class:`service.core.control.idle.IdleReclaim`, beside the
reconciler) judges it.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.core.control.idle import Activity, active_at
from service.core.control.periodic import every
from service.core.control.state import SERVING, Status, Target
from service.core.control.tasks import cancel_all
from service.core.identity.access import Principal, require_admin, require_user, visible
from service.core.workloads.resources import ResourceService
from service.database.db import in_transaction
from service.database.models import AlertEvent, Reclaim, Resource
from service.errors import Forbidden, InvalidInput, NotFound
from service.monitoring.alert_rules import AlertRuleSetting
from service.monitoring.alerts import Alerts, Running, event_view
from service.monitoring.chunks import chunks_of
from service.monitoring.metric_names import STANDARD_METRICS
from service.monitoring.samples import MAX_FUTURE_SECONDS, TelemetryBatch, is_metric_name
from service.monitoring.series import (
    Aggregate,
    Latest,
    Window,
    compact,
    insert_chunks,
    series,
    stored_metric_names,
)

log = logging.getLogger(__name__)


class Monitor:
    """The monitoring store and everything that reads it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        resources: ResourceService,
        wake: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.resources = resources
        self.wake = wake
        self.clock = clock
        self.latest = Latest()
        self.alerts = Alerts(settings.alert_rules)
        self.activity = Activity.begin(clock())
        self.ingested = 0  # samples stored since start
        self.dropped: dict[tuple[str, str], int] = {}  # senders' own drop counts
        self._names: dict[str, str] = {}  # resource id -> owner/type/name
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, http: httpx.AsyncClient) -> None:
        """Load alert state and start the background passes."""
        await in_transaction(self.sessions, self.alerts.load)
        settings = self.settings
        loops = (
            (lambda: settings.telemetry_compact_seconds, self._compact, "telemetry compaction"),
            (lambda: settings.alert_interval_seconds, lambda: self._silence(http), "alert check"),
        )
        for seconds, step, what in loops:
            self._tasks.append(asyncio.create_task(every(seconds, step, what, True), name=what))

    async def close(self) -> None:
        """Stop the background passes."""
        await cancel_all(self._tasks)

    # -- ingest ---------------------------------------------------------------------------

    def ingest(self, principal: Principal, batch: TelemetryBatch) -> dict[str, Any]:
        """Store a batch sent with its resource's token (or by an admin naming the resource)."""
        now = self.clock()
        chunks = chunks_of(batch.samples, batch.chunks)
        for chunk in chunks:
            if chunk.times[-1] > now + MAX_FUTURE_SECONDS:
                raise InvalidInput(
                    f"time: a sample of {chunk.source} is stamped {chunk.times[-1]:.0f}, more "
                    f"than {MAX_FUTURE_SECONDS}s ahead of the server's clock ({now:.0f}); "
                    "send seconds since the epoch"
                )
        with self.sessions.begin() as session:
            resource_id = self._sender(session, principal, batch.resource)
            count = insert_chunks(session, resource_id, chunks, now)
            self.alerts.observe(session, resource_id, chunks)
        known = self.latest.of(resource_id)
        gpu_idle = self.settings.idle_gpu_utilisation_percent
        for chunk in chunks:
            busy = active_at(chunk, known.get(chunk.source), gpu_idle)
            if busy:
                self.activity.saw(resource_id, busy)
        self.latest.update(resource_id, batch.process, chunks, now)
        if batch.dropped:
            self.dropped[(resource_id, batch.process)] = batch.dropped
        self.ingested += count
        return {"accepted": count}

    def _sender(self, session: Session, principal: Principal, named: str) -> str:
        if principal.resource_id is None:
            if not principal.is_admin:
                raise Forbidden(
                    "telemetry is sent with a resource's own token ($TITAN_TOKEN in its processes)"
                )
            if not named:
                raise InvalidInput("resource: an admin must name the resource (owner/type/name)")
            return self._by_name(session, named).id
        own = self._name_of(session, principal.resource_id)
        if named and named != own:
            raise Forbidden(f"samples for {named!r} were sent with the token of {own!r}")
        return principal.resource_id

    def _name_of(self, session: Session, resource_id: str) -> str:
        name = self._names.get(resource_id)
        if name is None:
            resource = session.get(Resource, resource_id)
            if resource is None:
                raise NotFound("the token's resource no longer exists")
            name = self._names[resource_id] = resource.key
        return name

    def _by_name(self, session: Session, named: str) -> Resource:
        owner, _, rest = named.partition("/")
        kind, _, name = rest.partition("/")
        resource = session.scalar(
            select(Resource).where(
                Resource.owner == owner, Resource.type == kind, Resource.name == name
            )
        )
        if resource is None:
            raise NotFound(f"resource: {named!r} not found; write owner/type/name")
        return resource

    # -- reading ----------------------------------------------------------------------------

    def query(
        self,
        principal: Principal,
        type: str,
        name: str,
        owner: str | None,
        metric: str,
        start: float | None,
        end: float | None,
        step: float | None,
        agg: str,
    ) -> dict[str, Any]:
        """Series of one metric of one resource, per source."""
        if not is_metric_name(metric):
            raise InvalidInput(f"metric: {metric!r} is not a metric name (e.g. host_cpu_percent)")
        if agg not in ("avg", "min", "max"):
            raise InvalidInput(f"agg: {agg!r} is not one of avg, min, max")
        now = self.clock()
        end = now if end is None else end
        window = Window.of(end - 900 if start is None else start, end, step)
        raw_since = now - self.settings.telemetry_raw_retention_seconds
        with self.sessions() as session:
            resource = self.resources.load(session, principal, type, name, owner)
            if metric not in STANDARD_METRICS:
                _known_or_404(metric, stored_metric_names(session, [resource.id]), resource.key)
            result = series(session, resource.id, metric, window, _agg(agg), raw_since)
        return {"resource": resource.key, **result}

    def metric_names(self, principal: Principal) -> list[dict[str, Any]]:
        """The metrics the samplers report and any other stored for a resource the caller
        may see, by name: ``{name, description, standard}`` (description None if not
        standard)."""
        with self.sessions() as session:
            ids = None
            if not principal.is_admin:
                query = select(Resource.id).where(*visible(principal, Resource.owner))
                ids = list(session.scalars(query))
            stored = stored_metric_names(session, ids) if ids != [] else set()
        return [
            {
                "name": name,
                "description": STANDARD_METRICS.get(name),
                "standard": name in STANDARD_METRICS,
            }
            for name in sorted(stored | STANDARD_METRICS.keys())
        ]

    def current(self, principal: Principal) -> list[dict[str, Any]]:
        """Every visible running resource with the newest reading of each of its sources."""
        shown = []
        for view in self.resources.list_visible(principal):
            if view["status"] not in (*SERVING, Status.STARTING, Status.STOPPING):
                continue
            readings = self.latest.of(view["id"])
            sources = [
                {
                    "source": source,
                    "process": reading.process,
                    "time": reading.time,
                    "values": reading.values,
                    "info": reading.info,
                }
                for source, reading in sorted(readings.items())
            ]
            shown.append(
                {
                    key: view[key]
                    for key in ("id", "owner", "type", "name", "status", "status_reason")
                }
                | {"sources": sources}
            )
        return shown

    def events(self, principal: Principal, state: str | None, limit: int) -> list[dict[str, Any]]:
        """Alert events the caller may see, newest first."""
        require_user(principal)
        if state not in (None, "firing", "resolved"):
            raise InvalidInput(f"state: {state!r} is not firing or resolved")
        query = select(AlertEvent, Resource).join(Resource, AlertEvent.resource_id == Resource.id)
        query = query.where(*visible(principal, Resource.owner))
        if state is not None:
            query = query.where(AlertEvent.state == state)
        with self.sessions() as session:
            rows = session.execute(query.order_by(AlertEvent.id.desc()).limit(limit))
            return [event_view(event, resource) for event, resource in rows]

    def reclaims(self, principal: Principal) -> dict[str, Any]:
        """Idle stops the caller may see, and the GPU-seconds they gave back."""
        require_user(principal)
        query = select(Reclaim, Resource).join(Resource, Reclaim.resource_id == Resource.id)
        query = query.where(*visible(principal, Resource.owner))
        with self.sessions() as session:
            rows = session.execute(query.order_by(Reclaim.id.desc())).all()
        items = [
            {
                "resource": resource.key,
                "at": reclaim.at.isoformat(),
                "idle_seconds": reclaim.idle_seconds,
                "gpus": reclaim.gpus,
                "gpu_seconds": reclaim.gpu_seconds,
                "reason": reclaim.reason,
            }
            for reclaim, resource in rows
        ]
        return {"gpu_seconds": sum(i["gpu_seconds"] for i in items), "reclaims": items}

    def rules(self, principal: Principal) -> list[dict[str, Any]]:
        """Every alert rule, from settings and from the API."""
        require_user(principal)
        return self.alerts.rules()

    def put_rule(self, principal: Principal, rule: AlertRuleSetting) -> dict[str, Any]:
        """Add or replace an alert rule (admins)."""
        require_admin(principal)
        with self.sessions.begin() as session:
            return self.alerts.put_rule(session, rule)

    def delete_rule(self, principal: Principal, name: str) -> None:
        """Remove an alert rule (admins)."""
        require_admin(principal)
        with self.sessions.begin() as session:
            self.alerts.delete_rule(session, name)

    def dropped_by_sender(self) -> dict[tuple[str, str], int]:
        """Samples each sender says it dropped, by (owner/type/name, process)."""
        return {
            (self._names.get(resource_id, resource_id), process): count
            for (resource_id, process), count in self.dropped.items()
        }

    def status_counts(self) -> list[tuple[str, str, int]]:
        """How many resources there are of each type and status."""
        with self.sessions() as session:
            query = select(Resource.type, Resource.status, func.count()).group_by(
                Resource.type, Resource.status
            )
            return [(t, s, int(n)) for t, s, n in session.execute(query)]

    # -- background passes ----------------------------------------------------------------------

    async def _compact(self) -> None:
        settings = self.settings
        done = await in_transaction(
            self.sessions,
            compact,
            self.clock(),
            settings.telemetry_raw_retention_seconds,
            settings.telemetry_rollup_retention_seconds,
        )
        if done.rollups_written or done.chunks_removed:
            log.info("telemetry compaction: %s", done)

    async def _silence(self, http: httpx.AsyncClient) -> None:
        await in_transaction(self.sessions, self._check_silence)
        for notice in self.alerts.take_notices():
            if self.settings.alert_webhook_url:
                await self._notify(http, notice)

    def _check_silence(self, session: Session) -> None:
        rows = session.execute(
            select(Resource.id, Resource.status_changed_at).where(
                Resource.target == Target.RUNNING, Resource.status.in_(SERVING)
            )
        ).all()
        started = self.activity.started  # nothing is silent from before the plane started
        running = [Running(r.id, max(r.status_changed_at.timestamp(), started)) for r in rows]
        self.alerts.check_silence(session, self.clock(), running, dict(self.latest.received))

    async def _notify(self, http: httpx.AsyncClient, notice: dict[str, Any]) -> None:
        url = self.settings.alert_webhook_url
        assert url is not None
        notice = {**notice, "resource": self._names.get(notice["resource_id"], "")}
        try:
            (await http.post(url, json=notice, timeout=10)).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("alert webhook %s failed: %s", url, exc)


def _known_or_404(metric: str, stored: set[str], resource: str) -> None:
    """NotFound naming the known metrics (and the closest) unless ``metric`` is stored."""
    if metric in stored:
        return
    known = sorted(stored | STANDARD_METRICS.keys())
    close = difflib.get_close_matches(metric, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise NotFound(
        f"metric: {metric!r} is not a metric Titan knows for {resource}; {hint}"
        f"known: {', '.join(known)} (GET /api/v1/telemetry/metrics lists them)"
    )


def _agg(agg: str) -> Aggregate:
    return "min" if agg == "min" else "max" if agg == "max" else "avg"
