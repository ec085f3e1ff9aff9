"""The monitoring store: raw samples for a retention window, minute rollups for longer.

Samples are written in batches (one ``executemany`` per POST). A compaction
pass (:func:`compact`) turns complete minutes into rollups (avg/min/max/count
per metric and source) and removes what is past retention. Queries
(:func:`series`) read raw samples for fine steps inside the raw window and
rollups otherwise. The latest sample of every source is also kept in memory
(:class:`Latest`) for ``/metrics``, ``titan top``, alerts and idle detection.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from service.errors import InvalidInput
from service.monitoring.samples import WireSample
from service.store.models import MonitoringState, Rollup, TelemetrySample

Aggregate = Literal["avg", "min", "max"]
MINUTE = 60
MAX_POINTS = 11_000  # per series and query
ROLLED_UP_UNTIL = "rolled_up_until"


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

    def update(
        self, resource_id: str, process: str, samples: Iterable[WireSample], now: float
    ) -> None:
        """Remember ``samples`` where they are newer than what is known."""
        with self.lock:
            known = self.sources.setdefault(resource_id, {})
            for sample in samples:
                current = known.get(sample.source)
                if current is None or sample.time >= current.time:
                    known[sample.source] = SourceReading(
                        sample.time, sample.values, sample.info, process
                    )
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


def insert_samples(session: Session, resource_id: str, samples: list[WireSample]) -> int:
    """Store ``samples`` for ``resource_id`` in one statement; how many were stored."""
    if samples:
        rows = [
            {"resource_id": resource_id, "source": s.source, "at": s.time, "values": s.values}
            for s in samples
        ]
        session.execute(insert(TelemetrySample), rows)
    return len(samples)


@dataclass(frozen=True)
class Window:
    """A query's time range and step, in epoch seconds."""

    start: float
    end: float
    step: float

    @classmethod
    def of(cls, start: float, end: float, step: float | None, max_points: int = 500) -> Window:
        """A checked window; without ``step``, one that gives about ``max_points`` points."""
        if not end > start:
            raise InvalidInput(f"to: must be after from ({end} <= {start})")
        if step is None:
            step = max(1.0, math.ceil((end - start) / max_points))
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
    rows = session.execute(
        select(TelemetrySample.source, TelemetrySample.at, TelemetrySample.values).where(
            TelemetrySample.resource_id == resource_id,
            TelemetrySample.at >= window.start,
            TelemetrySample.at < window.end,
        )
    )
    groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for source, at, values in rows:
        value = values.get(metric)
        if value is not None:
            groups[source][window.bucket(at)].append(value)
    return {
        source: {t: _combine(agg, vs, [1] * len(vs)) for t, vs in buckets.items()}
        for source, buckets in groups.items()
    }


def _rolled(
    session: Session, resource_id: str, metric: str, window: Window, agg: Aggregate
) -> dict[str, dict[float, float]]:
    first = math.floor(window.start / MINUTE) * MINUTE
    rows = session.execute(
        select(Rollup.source, Rollup.minute, getattr(Rollup, agg), Rollup.count).where(
            Rollup.resource_id == resource_id,
            Rollup.metric == metric,
            Rollup.minute >= first,
            Rollup.minute < window.end,
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
    samples_removed: int
    rollups_removed: int


def compact(
    session: Session,
    now: float,
    raw_retention: float,
    rollup_retention: float,
    lag: float = 2 * MINUTE,
    chunk_minutes: int = 60,
) -> Compaction:
    """Roll up every complete minute older than ``lag`` not rolled up yet, then expire.

    Samples arriving later than ``lag`` for a minute already rolled up stay
    queryable raw but are not in its rollup.
    """
    until = math.floor((now - lag) / MINUTE) * MINUTE
    state = session.get(MonitoringState, ROLLED_UP_UNTIL)
    start = state.value if state is not None else _first_minute(session, until)
    written = 0
    cursor = start
    while cursor < until:
        chunk_end = min(until, cursor + chunk_minutes * MINUTE)
        written += _roll_up(session, cursor, chunk_end)
        cursor = chunk_end
    if state is None:
        session.add(MonitoringState(name=ROLLED_UP_UNTIL, value=max(start, until)))
    else:
        state.value = max(state.value, until)
    removed = _deleted(
        session.execute(delete(TelemetrySample).where(TelemetrySample.at < now - raw_retention))
    )
    expired = _deleted(
        session.execute(delete(Rollup).where(Rollup.minute < now - rollup_retention))
    )
    return Compaction(int(max(0, until - start) // MINUTE), written, removed, expired)


def _deleted(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _first_minute(session: Session, until: float) -> float:
    oldest = session.scalar(select(TelemetrySample.at).order_by(TelemetrySample.at).limit(1))
    return until if oldest is None else math.floor(oldest / MINUTE) * MINUTE


def _roll_up(session: Session, start: float, end: float) -> int:
    rows = session.execute(
        select(
            TelemetrySample.resource_id,
            TelemetrySample.source,
            TelemetrySample.at,
            TelemetrySample.values,
        ).where(TelemetrySample.at >= start, TelemetrySample.at < end)
    )
    # (resource, metric, minute, source) -> [sum, min, max, count]
    acc: dict[tuple[str, str, int, str], list[float]] = {}
    for resource_id, source, at, values in rows:
        minute = int(at // MINUTE) * MINUTE
        for metric, value in values.items():
            key = (resource_id, metric, minute, source)
            found = acc.get(key)
            if found is None:
                acc[key] = [value, value, value, 1]
            else:
                found[0] += value
                found[1] = min(found[1], value)
                found[2] = max(found[2], value)
                found[3] += 1
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
