"""What the front door knows of each running deployment: its routes, its replicas and
their health, which replica serves next, and its request counts.

One :class:`ServingTable` per control plane, kept in memory: the health checker
fills it from the store and the checks it makes (:mod:`service.core.control
.health_checks`), the reconciler reads replicas' health from it for rollouts and
drains replicas in it before stopping them, and the front door
(``/deploy/<owner>/<name>/``) picks replicas from it. Health is observed state,
re-learned within one check interval after a restart (no traffic meanwhile).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.core.workloads.replicas import Health

# Latency buckets (seconds) of each deployment's request histogram.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


@dataclass(frozen=True)
class Check:
    """A deployment's health check, as its recipe gives it."""

    path: str = "/"
    interval: float = 2.0
    timeout: float = 2.0
    failures: int = 3
    start_period: float = 120.0


@dataclass
class Replica:
    """One replica as the front door sees it."""

    name: str
    url: str  # where it listens, without a trailing '/'
    since: str  # when its process started (a replaced replica of the same name is new)
    first_seen: float = field(default_factory=time.monotonic)
    health: Health = Health.UNKNOWN
    failures: int = 0  # checks failed in a row
    passed_once: bool = False
    last_error: str = ""
    next_check: float = 0.0
    draining: bool = False  # about to stop: no new requests
    in_flight: int = 0

    @property
    def serves(self) -> bool:
        """Whether new requests may go to it."""
        return self.health == Health.HEALTHY and not self.draining


@dataclass
class Counts:
    """Requests through the front door to one deployment since the server started."""

    requests: int = 0
    errors: int = 0  # answered 5xx, or not answered at all
    seconds: float = 0.0  # summed latency
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))

    def add(self, seconds: float, error: bool) -> None:
        """Count one request that took ``seconds``."""
        self.requests += 1
        self.errors += error
        self.seconds += seconds
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1
                break


@dataclass
class Served:
    """One running deployment: who may call which path, and its replicas."""

    resource_id: str
    owner: str
    name: str
    routes: list[tuple[str, str]]  # (path, visibility), longest path first
    owner_groups: frozenset[str]  # the groups the owner is in (or the owning group)
    check: Check
    replicas: dict[str, Replica] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    turn: itertools.count[int] = field(default_factory=itertools.count)

    def route_for(self, path: str) -> tuple[str, str] | None:
        """The route serving ``path`` (the longest whose path is a prefix of it, by whole
        segments), or None."""
        for prefix, visibility in self.routes:
            base = prefix.rstrip("/")
            if path == base or path.startswith(base + "/") or prefix == "/":
                return prefix, visibility
        return None


@dataclass(frozen=True)
class ServedRow:
    """A running deployment as the store records it (what :meth:`ServingTable.refresh`
    takes): its replicas as ``(name, url, started at)``."""

    resource_id: str
    owner: str
    name: str
    routes: list[tuple[str, str]]
    owner_groups: frozenset[str]
    check: Check
    replicas: list[tuple[str, str, str]]


class ServingTable:
    """Every running deployment the front door serves, by owner and name."""

    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], Served] = {}
        self._by_id: dict[str, Served] = {}
        self.drain_poll = 0.05

    def refresh(self, rows: Iterable[ServedRow]) -> None:
        """Take what the store records now; a replica seen before keeps its health."""
        by_id: dict[str, Served] = {}
        for row in rows:
            served = self._by_id.get(row.resource_id)
            if served is None:
                served = Served(row.resource_id, row.owner, row.name, [], frozenset(), row.check)
            served.routes = sorted(row.routes, key=lambda r: len(r[0]), reverse=True)
            served.owner_groups, served.check = row.owner_groups, row.check
            replicas: dict[str, Replica] = {}
            for name, url, since in row.replicas:
                known = served.replicas.get(name)
                same = known is not None and known.since == since  # not one started anew
                replicas[name] = known if known is not None and same else Replica(name, url, since)
            served.replicas = replicas
            by_id[row.resource_id] = served
        self._by_id = by_id
        self._by_name = {(s.owner, s.name): s for s in by_id.values()}

    def find(self, owner: str, name: str) -> Served | None:
        """The running deployment ``owner``/``name``, if any."""
        return self._by_name.get((owner, name))

    def deployments(self) -> list[Served]:
        """Every running deployment."""
        return list(self._by_id.values())

    def pick(self, served: Served, avoid: Iterable[str] = ()) -> Replica | None:
        """The next healthy replica not draining (round robin), but for ``avoid``; None if
        there is none."""
        skipped = set(avoid)
        ready = [r for r in served.replicas.values() if r.serves and r.name not in skipped]
        if not ready:
            return None
        return ready[next(served.turn) % len(ready)]

    def health(self, resource_id: str) -> dict[str, Health]:
        """Each replica's health (those not checked yet are absent: unknown)."""
        served = self._by_id.get(resource_id)
        return {n: r.health for n, r in served.replicas.items()} if served else {}

    def problem(self, resource_id: str, name: str) -> str:
        """Why replica ``name`` failed its health check, as a reason names it."""
        served = self._by_id.get(resource_id)
        replica = served.replicas.get(name) if served else None
        if served is None or replica is None:
            return f"{name} failed its health check"
        return (
            f"{name} failed its health check GET {served.check.path} "
            f"{replica.failures} time(s) in a row ({replica.last_error or 'no answer'})"
        )

    async def drain(self, resource_id: str, names: Iterable[str], timeout: float) -> None:
        """Send replicas ``names`` no new request, then wait (at most ``timeout`` seconds)
        until the requests they are answering are done."""
        served = self._by_id.get(resource_id)
        if served is None:
            return
        leaving = [served.replicas[n] for n in names if n in served.replicas]
        for replica in leaving:
            replica.draining = True
        deadline = time.monotonic() + timeout
        while any(r.in_flight for r in leaving) and time.monotonic() < deadline:
            await asyncio.sleep(self.drain_poll)
