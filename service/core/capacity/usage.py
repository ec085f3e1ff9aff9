"""Usage: GPU-hours and CPU-hours per owner and day, from the allocation log.

Each placed process writes one :class:`Allocation` row (what it holds, from
when). ``close_ended`` marks rows whose process is gone or exited as ended
(at the process's recorded finish when known); the reconciler runs it on
every resync, so a usage report is at most one resync late. Rows outlive
their processes and resources: deleting a resource does not erase what it
used.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.control.state import Phase
from service.core.identity.access import Principal, check_see, require_user, visible
from service.database.models import Allocation, Process, utcnow
from service.errors import InvalidInput

MAX_DAYS = 366


def record_allocation(session: Session, process: Process, owner: str, resource: str) -> None:
    """Log what ``process`` (flushed, with its id) holds from now."""
    session.add(
        Allocation(
            process_id=process.id,
            owner=owner,
            resource=resource,
            process=process.name,
            gpus=len(process.gpus) * process.gpu_share,
            cpu=process.cpu,
            memory_bytes=process.memory_bytes,
            started_at=process.started_at,
        )
    )


def close_ended(session: Session) -> int:
    """End the log rows of processes that exited or were forgotten; how many were ended."""
    open_rows = session.scalars(select(Allocation).where(Allocation.ended_at.is_(None))).all()
    if not open_rows:
        return 0
    ids = [row.process_id for row in open_rows]
    live = {
        process.id: process
        for process in session.scalars(select(Process).where(Process.id.in_(ids)))
    }
    now = utcnow()
    ended = 0
    for row in open_rows:
        process = live.get(row.process_id)
        if process is not None and process.state != Phase.EXITED and process.name == row.process:
            continue
        finished = process.finished_at if process is not None else None
        row.ended_at = max(finished or now, row.started_at)
        ended += 1
    return ended


class UsageService:
    """Usage reports: everything for admins, their own and their groups' for users."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def report(
        self, principal: Principal, start: date | None, end: date | None, owner: str | None
    ) -> dict[str, Any]:
        """GPU-hours and CPU-hours per owner and UTC day, ``start`` to ``end`` inclusive
        (default: the last 7 days)."""
        require_user(principal)
        last = end or utcnow().date()
        first = start or max(last, date.min + timedelta(days=6)) - timedelta(days=6)
        if last >= date.max:
            raise InvalidInput(f"to: must be before {date.max.isoformat()}")
        if first > last:
            raise InvalidInput("from: must be on or before to")
        if (last - first).days >= MAX_DAYS:
            raise InvalidInput(f"from, to: at most {MAX_DAYS} days at once")
        if owner is not None:
            check_see(principal, owner, f"usage of {owner!r}")
        window_start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        window_end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        query = select(Allocation).where(
            Allocation.started_at < window_end,
            or_(Allocation.ended_at.is_(None), Allocation.ended_at > window_start),
            *visible(principal, Allocation.owner),
        )
        if owner is not None:
            query = query.where(Allocation.owner == owner)
        with self.sessions.begin() as session:
            close_ended(session)
            rows = session.scalars(query).all()
        now = utcnow()
        totals: dict[tuple[str, date], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for row in rows:
            begin = max(row.started_at, window_start)
            finish = min(row.ended_at or now, window_end)
            for day, hours in _split_by_day(begin, finish):
                total = totals[(row.owner, day)]
                total[0] += row.gpus * hours
                total[1] += row.cpu * hours
        days = [
            {
                "owner": who,
                "day": day.isoformat(),
                "gpu_hours": round(gpu, 4),
                "cpu_hours": round(cpu, 4),
            }
            for (who, day), (gpu, cpu) in sorted(totals.items())
        ]
        return {"from": first.isoformat(), "to": last.isoformat(), "days": days}


def _split_by_day(begin: datetime, finish: datetime) -> list[tuple[date, float]]:
    """Hours between ``begin`` and ``finish`` on each UTC day they touch."""
    parts = []
    cursor = begin
    while cursor < finish:
        midnight = datetime(cursor.year, cursor.month, cursor.day, tzinfo=UTC) + timedelta(days=1)
        stop = min(midnight, finish)
        parts.append((cursor.date(), (stop - cursor).total_seconds() / 3600))
        cursor = stop
    return parts
