"""Quotas: how much one owner (a user or a group) may hold at once.

Four limits: GPUs (shares count as parts), CPUs, memory, and resources that
run at once. A limit left out is the operator's default (``TITAN_DEFAULT_QUOTA``);
a limit nowhere set is unlimited. A resource counts against its owner only:
a group's resources use the group's quota, not their creator's.

Checked in three places, each inside the transaction that commits the
decision:
- at apply: a recipe larger than its owner's quota can never run and is
  refused, naming the quota and the current use;
- at apply and start: a resource beyond the owner's running-resources limit
  is refused (stop or delete one first);
- at allocation (under the reconciler's allocation lock): a process that
  would take its owner over a limit waits as pending, like one that waits
  for free GPUs, and starts when the owner's other work frees enough.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.capacity.ledger import EPSILON, Holding, Request, Unplaceable, amount, holdings
from service.core.capacity.limits import QuotaLimits
from service.core.control.state import Target
from service.core.identity.access import Principal, check_see, owner_exists, require_admin
from service.database.models import Quota, Resource
from service.errors import Conflict, InvalidInput, NotFound
from service.recipes.units import parse_memory

GIB = 1024**3


@dataclass(frozen=True)
class Limits:
    """Effective limits (None: unlimited)."""

    gpus: float | None = None
    cpus: float | None = None
    memory_bytes: int | None = None
    resources: int | None = None

    def view(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Use:
    """What an owner holds now."""

    gpus: float
    cpus: float
    memory_bytes: int
    resources: int

    def view(self) -> dict[str, Any]:
        return {
            "gpus": round(self.gpus, 6),
            "cpus": round(self.cpus, 6),
            "memory_bytes": self.memory_bytes,
            "resources": self.resources,
        }


def limits_of(session: Session, owner: str, default: QuotaLimits) -> Limits:
    """The owner's effective limits: its row, with the default filling what it leaves out."""
    row = session.get(Quota, owner)
    memory = parse_memory(default.memory) if default.memory else None
    if row is None:
        return Limits(default.gpus, default.cpus, memory, default.resources)
    return Limits(
        row.gpus if row.gpus is not None else default.gpus,
        row.cpus if row.cpus is not None else default.cpus,
        row.memory_bytes if row.memory_bytes is not None else memory,
        row.resources if row.resources is not None else default.resources,
    )


def use_of(session: Session, owner: str, held: list[Holding] | None = None) -> Use:
    """What ``owner`` holds now: its live processes and its resources meant to run."""
    mine = [h for h in (held if held is not None else holdings(session)) if h.owner == owner]
    return Use(
        gpus=sum(h.gpu_total for h in mine),
        cpus=sum(h.cpu for h in mine),
        memory_bytes=sum(h.memory_bytes for h in mine),
        resources=running_count(session, owner),
    )


def running_count(session: Session, owner: str) -> int:
    """How many of ``owner``'s resources are meant to run (target ``running``)."""
    query = select(func.count()).select_from(Resource)
    query = query.where(Resource.owner == owner, Resource.target == Target.RUNNING)
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class Excess:
    """One limit a request would pass: its unit, the limit, the use and the request."""

    unit: str
    limit: float
    used: float
    wanted: float


def _over(limits: Limits, use: Use, request: Request) -> Excess | None:
    """The first limit ``request`` would pass beside ``use``; None if none."""
    checks = (
        ("GPUs", limits.gpus, use.gpus, request.gpu_total, 1.0),
        ("CPUs", limits.cpus, use.cpus, request.cpu, 1.0),
        ("GiB of memory", limits.memory_bytes, use.memory_bytes, request.memory_bytes, GIB),
    )
    for unit, limit, used, wanted, scale in checks:
        if limit is not None and wanted > 0 and used + wanted > limit + EPSILON:
            return Excess(unit, limit / scale, used / scale, wanted / scale)
    return None


def check_allocation(
    session: Session, owner: str, request: Request, default: QuotaLimits, held: list[Holding]
) -> None:
    """Unplaceable if ``request`` would take ``owner`` over its quota now (it waits)."""
    excess = _over(limits_of(session, owner, default), use_of(session, owner, held), request)
    if excess is not None:
        raise Unplaceable(
            f"waiting for quota of {owner!r}: {amount(excess.wanted)} {excess.unit} wanted, "
            f"{amount(excess.used)} of {amount(excess.limit)} in use"
        )


def check_recipe(session: Session, owner: str, request: Request, default: QuotaLimits) -> None:
    """InvalidInput if ``request`` exceeds ``owner``'s quota even with nothing else running."""
    excess = _over(limits_of(session, owner, default), Use(0.0, 0.0, 0, 0), request)
    if excess is not None:
        use = use_of(session, owner)
        raise InvalidInput(
            f"quota: this recipe asks for {amount(excess.wanted)} {excess.unit} but the quota of "
            f"{owner!r} is {amount(excess.limit)} (now in use: {_describe(use)}); "
            "ask an admin for a larger quota or make the recipe smaller"
        )


def check_running_count(
    session: Session, owner: str, default: QuotaLimits, adding: int = 1
) -> None:
    """Conflict if ``owner`` would run more resources at once than its quota allows."""
    limit = limits_of(session, owner, default).resources
    if limit is None:
        return
    running = running_count(session, owner)  # not use_of: no need to read every process
    if running + adding > limit:
        raise Conflict(
            f"quota: {owner!r} may run {limit} resource{'s' * (limit != 1)} at once and "
            f"{running} {'is' if running == 1 else 'are'} meant to run; "
            "stop or delete one first, or ask an admin for a larger quota"
        )


def _describe(use: Use) -> str:
    return (
        f"{amount(use.gpus)} GPUs, {amount(use.cpus)} CPUs, {amount(use.memory_bytes / GIB)} GiB, "
        f"{use.resources} running resources"
    )


class QuotaService:
    """Read quotas (owners and their members) and set them (admins)."""

    def __init__(self, sessions: sessionmaker[Session], default: QuotaLimits) -> None:
        self.sessions = sessions
        self.default = default

    def get(self, principal: Principal, owner: str) -> dict[str, Any]:
        """The owner's effective limits and what it holds now."""
        check_see(principal, owner, f"quota of {owner!r}")
        with self.sessions() as session:
            if not owner_exists(session, owner):
                raise NotFound(f"quota of {owner!r} not found: no such user or group")
            return self._view(session, owner)

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        """Every owner with a quota of its own, and the default (admins)."""
        require_admin(principal)
        with self.sessions() as session:
            owners = session.scalars(select(Quota.owner).order_by(Quota.owner)).all()
            return [self._view(session, owner) for owner in owners]

    def put(self, principal: Principal, owner: str, limits: QuotaLimits) -> dict[str, Any]:
        """Set the owner's limits; fields left out follow the default (admins)."""
        require_admin(principal)
        with self.sessions.begin() as session:
            if not owner_exists(session, owner):
                raise NotFound(f"no user or group named {owner!r}")
            row = session.get(Quota, owner) or Quota(owner=owner)
            row.gpus, row.cpus, row.resources = limits.gpus, limits.cpus, limits.resources
            row.memory_bytes = parse_memory(limits.memory) if limits.memory else None
            session.add(row)
            session.flush()
            return self._view(session, owner)

    def delete(self, principal: Principal, owner: str) -> None:
        """Drop the owner's own limits: the default applies again (admins)."""
        require_admin(principal)
        with self.sessions.begin() as session:
            row = session.get(Quota, owner)
            if row is None:
                raise NotFound(f"{owner!r} has no quota of its own")
            session.delete(row)

    def _view(self, session: Session, owner: str) -> dict[str, Any]:
        return {
            "owner": owner,
            "limits": limits_of(session, owner, self.default).view(),
            "use": use_of(session, owner).view(),
        }
