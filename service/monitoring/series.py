"""The monitoring store: raw samples for a retention window, minute rollups for longer.

Samples are written in batches: one packed chunk per source per POST (see
:mod:`service.monitoring.chunks`). A compaction
pass (:func:`compact`) turns complete minutes into rollups (avg/min/max/count
per metric and source) and removes what is past retention. Queries
(:func:`series`) read raw samples for fine steps inside the raw window and
rollups otherwise. The latest sample of every source is also kept in memory
(:class:`Latest`) for ``/metrics``, ``titan top``, alerts and idle detection.
"""

from __future__ import annotations

import json
import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Text, cast, delete, func, insert, select, update
from sqlalchemy.orm import Session

from service.database.models import Rollup, SampleChunk
from service.errors import InvalidInput
from service.monitoring.chunks import Chunk

Aggregate = Literal["avg", "min", "max"]
MINUTE = 60
# Windows longer than this default to minute steps (rollups); a finer step reads raw samples.
RAW_SPAN = 3600
MAX_POINTS = 11_000  # per series and query


@dataclass
class SourceReading:
    """The newest sample of one source, and which process sent it."""

    time: float
    values: dict[str, float]
    info: dict[str, str]
    process: str


@dataclass
class Latest:
    """The newest reading of every source of every resource, in memory.

    ``received`` is when the control plane last heard from a resource (its
    own clock), so silence can be told apart from idleness.
    """

    sources: dict[str, dict[str, SourceReading]] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, resource_id: str, process: str, chunks: Iterable[Chunk], now: float) -> None:
        """Remember the newest reading of each chunk's source, where newer than what is known."""
        with self.lock:
            known = self.sources.setdefault(resource_id, {})
            for chunk in chunks:
                current = known.get(chunk.source)
                newest = chunk.times[-1]
                if current is None or newest >= current.time:
                    known[chunk.source] = SourceReading(newest, chunk.last(), chunk.info, process)
            self.received[resource_id] = now

    def of(self, resource_id: str) -> dict[str, SourceReading]:
        """A copy of the newest readings of one resource, by source."""
        with self.lock:
            return dict(self.sources.get(resource_id, {}))

    def forget(self, resource_id: str) -> None:
        """Drop a resource (it stopped or was deleted)."""
        with self.lock:
            self.sources.pop(resource_id, None)
            self.received.pop(resource_id, None)


def insert_chunks(
    session: Session, resource_id: str, chunks: list[Chunk], received_at: float
) -> int:
    """Store ``chunks`` for ``resource_id`` in one statement; how many samples they hold.

    ``received_at`` is the server's clock when they were stored.
    """
    if not chunks:
        return 0
    rows = []
    for chunk in chunks:
        names, data = chunk.encode()
        rows.append(
            {
                "resource_id": resource_id,
                "source": chunk.source,
                "start_at": chunk.times[0],
                "end_at": chunk.times[-1],
                "received_at": received_at,
                "rolled": False,
                "count": len(chunk.times),
                "metrics": names,
                "data": data,
            }
        )
    session.execute(insert(SampleChunk), rows)
    return sum(len(chunk.times) for chunk in chunks)


def _chunks(session: Session, start: float, end: float, resource_id: str | None = None) -> Any:
    """Chunks holding samples in ``[start, end)``, decoded one by one."""
    where = [SampleChunk.start_at < end, SampleChunk.end_at >= start]
    if resource_id is not None:
        where.append(SampleChunk.resource_id == resource_id)
    query = select(
        SampleChunk.resource_id, SampleChunk.source, SampleChunk.metrics, SampleChunk.data
    ).where(*where)
    for owner, source, names, data in session.execute(query):
        yield owner, Chunk.decode(source, names, data)


def stored_metric_names(session: Session, resource_ids: list[str] | None = None) -> set[str]:
    """Every metric name stored (raw or rolled up) for ``resource_ids``; for every
    resource if None."""
    rolled = select(Rollup.metric).distinct()
    # Compared as text: PostgreSQL's json type has no equality, so no DISTINCT of its own.
    raw = select(cast(SampleChunk.metrics, Text)).distinct()
    if resource_ids is not None:
        rolled = rolled.where(Rollup.resource_id.in_(resource_ids))
        raw = raw.where(SampleChunk.resource_id.in_(resource_ids))
    names = set(session.scalars(rolled))
    for listed in session.scalars(raw):
        names.update(json.loads(listed))
    return names


@dataclass(frozen=True)
class Window:
    """A query's time range and step, in epoch seconds."""

    start: float
    end: float
    step: float

    @classmethod
    def of(cls, start: float, end: float, step: float | None, max_points: int = 500) -> Window:
        """A checked window; without ``step``, one that gives about ``max_points`` points,
        but never under a minute for a window over ``RAW_SPAN``: such a window is answered
        from minute rollups (reading raw samples for hours took ~200 ms; rollups < 100)."""
        if not end > start:
            raise InvalidInput(f"to: must be after from ({end} <= {start})")
        if step is None:
            step = max(1.0, math.ceil((end - start) / max_points))
            if end - start > RAW_SPAN:
                step = max(step, MINUTE)
        if step <= 0:
            raise InvalidInput("step: must be a positive number of seconds")
        if (end - start) / step > MAX_POINTS:
            fewest = math.ceil((end - start) / MAX_POINTS)
            raise InvalidInput(
                f"step: {step:g}s gives over {MAX_POINTS} points; use step={fewest} or more"
            )
        return cls(start, end, step)

    def bucket(self, at: float) -> float:
        """The start of the step ``at`` falls in."""
        return self.start + math.floor((at - self.start) / self.step) * self.step


def series(
    session: Session,
    resource_id: str,
    metric: str,
    window: Window,
    agg: Aggregate,
    raw_since: float,
) -> dict[str, Any]:
    """One series per source of ``metric``: ``[[time, value], ...]`` per step.

    Raw samples answer when the step is under a minute and the window lies in
    the raw retention (starting after ``raw_since``); minute rollups otherwise.
    """
    use_raw = window.step < MINUTE and window.start >= raw_since
    points = (_raw if use_raw else _rolled)(session, resource_id, metric, window, agg)
    return {
        "metric": metric,
        "from": window.start,
        "to": window.end,
        "step": window.step,
        "agg": agg,
        "resolution": "raw" if use_raw else "1m",
        "series": [
            {"source": source, "points": [[t, v] for t, v in sorted(by_time.items())]}
            for source, by_time in sorted(points.items())
        ],
    }


def _raw(
    session: Session, resource_id: str, metric: str, window: Window, agg: Aggregate
) -> dict[str, dict[float, float]]:
    groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _owner, chunk in _chunks(session, window.start, window.end, resource_id):
        buckets = groups[chunk.source]
        for at, value in chunk.points(metric):
            if window.start <= at < window.end:
                buckets[window.bucket(at)].append(value)
    return {
        source: {t: _combine(agg, vs, [1] * len(vs)) for t, vs in buckets.items()}
        for source, buckets in groups.items()
        if buckets
    }


def _rolled(
    session: Session, resource_id: str, metric: str, window: Window, agg: Aggregate
) -> dict[str, dict[float, float]]:
    if window.step != int(window.step):
        return _rolled_here(session, resource_id, metric, window, agg)
    # Grouped by the database: a day of 8 GPUs is 11,520 rollups and at most 8,000 answers.
    origin, step = math.floor(window.start), int(window.step)
    bucket = ((Rollup.minute - origin) // step).label("bucket")
    value = {
        "avg": func.sum(Rollup.avg * Rollup.count) / func.sum(Rollup.count),
        "min": func.min(Rollup.min),
        "max": func.max(Rollup.max),
    }[agg]
    query = (
        select(Rollup.source, bucket, value)
        .where(*_rollups_of(resource_id, metric, window))
        .group_by(Rollup.source, bucket)
    )
    points: dict[str, dict[float, float]] = defaultdict(dict)
    for source, index, combined in session.connection().execute(query):
        points[source][window.start + max(0, int(index)) * window.step] = float(combined)
    return points


def _rollups_of(resource_id: str, metric: str, window: Window) -> list[Any]:
    """The rollups of one metric of one resource whose minute overlaps ``window``."""
    return [
        Rollup.resource_id == resource_id,
        Rollup.metric == metric,
        Rollup.minute >= math.floor(window.start / MINUTE) * MINUTE,
        Rollup.minute < window.end,
    ]


def _rolled_here(
    session: Session, resource_id: str, metric: str, window: Window, agg: Aggregate
) -> dict[str, dict[float, float]]:
    """Rollups combined here, for steps of fractional seconds (no integer bucket in SQL)."""
    rows = session.connection().execute(  # Core rows: a day of 8 GPUs is 11,520 of them
        select(Rollup.source, Rollup.minute, getattr(Rollup, agg), Rollup.count).where(
            *_rollups_of(resource_id, metric, window)
        )
    )
    groups: dict[str, dict[float, tuple[list[float], list[int]]]] = defaultdict(
        lambda: defaultdict(lambda: ([], []))
    )
    for source, minute, value, count in rows:
        values, counts = groups[source][window.bucket(max(float(minute), window.start))]
        values.append(value)
        counts.append(count)
    return {
        source: {t: _combine(agg, vs, cs) for t, (vs, cs) in buckets.items()}
        for source, buckets in groups.items()
    }


def _combine(agg: Aggregate, values: list[float], counts: list[int]) -> float:
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    return sum(v * c for v, c in zip(values, counts, strict=True)) / sum(counts)


@dataclass(frozen=True)
class Compaction:
    """What one compaction pass did."""

    minutes_rolled_up: int
    rollups_written: int
    chunks_removed: int
    rollups_removed: int


def compact(
    session: Session,
    now: float,
    raw_retention: float,
    rollup_retention: float,
    lag: float = 2 * MINUTE,
    chunk_minutes: int = 60,
) -> Compaction:
    """Roll up the minutes new samples fell in, once they are ``lag`` old; then expire.

    Every chunk is rolled up once, when it is complete: the minutes it covers
    are rolled up again from all their raw samples, so samples that arrive
    late (a sender cut off for a while, a backfill) land in their minute too.
    A chunk stored while a pass runs is left for the next one.
    """
    until = math.floor((now - lag) / MINUTE) * MINUTE
    fresh = session.execute(
        select(SampleChunk.id, SampleChunk.start_at, SampleChunk.end_at).where(
            SampleChunk.rolled.is_(False), SampleChunk.end_at < until
        )
    ).all()
    minutes = sorted(
        {
            minute
            for _, start, end in fresh
            for minute in range(_minute(start), _minute(end) + MINUTE, MINUTE)
        }
    )
    written = 0
    for first, last in _runs(minutes, chunk_minutes):
        written += _roll_up(session, first, last + MINUTE)
    ids = [row.id for row in fresh]
    for at in range(0, len(ids), 1000):
        session.execute(
            update(SampleChunk).where(SampleChunk.id.in_(ids[at : at + 1000])).values(rolled=True)
        )
    removed = _deleted(
        session.execute(delete(SampleChunk).where(SampleChunk.end_at < now - raw_retention))
    )
    expired = _deleted(
        session.execute(delete(Rollup).where(Rollup.minute < now - rollup_retention))
    )
    return Compaction(len(minutes), written, removed, expired)


def _minute(at: float) -> int:
    return int(at // MINUTE) * MINUTE


def _runs(minutes: list[int], longest: int) -> list[tuple[int, int]]:
    """Sorted minutes as (first, last) runs of consecutive minutes, at most ``longest`` long."""
    runs: list[tuple[int, int]] = []
    for minute in minutes:
        if runs and minute == runs[-1][1] + MINUTE and minute - runs[-1][0] < longest * MINUTE:
            runs[-1] = (runs[-1][0], minute)
        else:
            runs.append((minute, minute))
    return runs


def _deleted(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _roll_up(session: Session, start: float, end: float) -> int:
    # (resource, metric, minute, source) -> [sum, min, max, count]
    acc: dict[tuple[str, str, int, str], list[float]] = {}
    for resource_id, chunk in _chunks(session, start, end):
        for metric, column in chunk.columns.items():
            for at, value in zip(chunk.times, column, strict=True):
                if not start <= at < end or value != value:  # outside, or NaN: not reported
                    continue
                key = (resource_id, metric, int(at // MINUTE) * MINUTE, chunk.source)
                found = acc.get(key)
                if found is None:
                    acc[key] = [value, value, value, 1]
                else:
                    found[0] += value
                    found[1] = min(found[1], value)
                    found[2] = max(found[2], value)
                    found[3] += 1
    session.execute(delete(Rollup).where(Rollup.minute >= start, Rollup.minute < end))
    if acc:
        session.execute(
            insert(Rollup),
            [
                {
                    "resource_id": resource_id,
                    "metric": metric,
                    "minute": minute,
                    "source": source,
                    "avg": total / count,
                    "min": low,
                    "max": high,
                    "count": int(count),
                }
                for (resource_id, metric, minute, source), (total, low, high, count) in acc.items()
            ],
        )
    return len(acc)
