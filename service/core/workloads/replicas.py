"""A deployment's replicas: their names, and the next step of a rolling update.

Replicas are named by revision, ``replica-<revision>-<index>``, where the revision
is a fingerprint of what a replica runs (command, size, environment, image...):
a recipe change that changes what runs gives new names, so the new replicas
start beside the old ones and the old ones go one by one. A change of ``scale``
or ``routes`` alone keeps the revision: replicas are added or removed, nothing
restarts. Rolling back to a recipe whose replicas still run (a rollout stopped
half way) keeps them.

:func:`rollout_step` is pure: given what runs and how healthy it is, it says
which replicas may run now and which old ones may go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from service.engines.base import PlannedProcess

PREFIX = "replica-"


class Health(StrEnum):
    """What the health checker last concluded of a replica."""

    UNKNOWN = "unknown"  # not (yet) passed its health check: no traffic
    HEALTHY = "healthy"  # passed its latest check: gets traffic
    FAILED = "failed"  # failed its check the recipe's number of times in a row: replaced


def revision_of(replica: PlannedProcess) -> str:
    """The revision of a replica: 8 hex digits of everything it runs with (not its name)."""
    return replace(replica, name="").spec_hash[:8]


def replica_set(replica: PlannedProcess, scale: int) -> dict[str, PlannedProcess]:
    """``scale`` replicas like ``replica``, by name, index 0 first."""
    revision = revision_of(replica)
    names = [f"{PREFIX}{revision}-{index}" for index in range(scale)]
    return {name: replace(replica, name=name) for name in names}


def is_replica(name: str) -> bool:
    """Whether ``name`` names a deployment's replica."""
    return name.startswith(PREFIX)


def revision_in(name: str) -> str:
    """The revision part of replica ``name`` ("" if it is no replica's name)."""
    parts = name.split("-")
    return parts[1] if is_replica(name) and len(parts) == 3 else ""


@dataclass(frozen=True)
class Step:
    """One step of bringing a deployment's replicas to its recipe.

    ``run``: the wanted replicas that may run now (those running and, at most one
    at a time while old ones serve, one to start); ``keep``: old replicas that go on
    serving for now; ``failed``: replicas to stop because their health check failed
    (replaced; a new version's stops the rollout); ``waiting``: why the rollout is not
    done yet ("" when every wanted replica is healthy and no old one is left).
    """

    run: tuple[str, ...]
    keep: tuple[str, ...]
    failed: tuple[str, ...]
    waiting: str


def rollout_step(
    wanted: Sequence[str], running: Sequence[str], health: Mapping[str, Health]
) -> Step:
    """The next step from the replicas ``running`` toward ``wanted`` (the recipe's, in
    order), given each one's ``health``; surge 1: while old replicas serve, one new
    replica starts, and only once it is healthy does an old one go (then the next new
    one starts). With no old replica serving, every wanted one may run at once."""
    scale = len(wanted)
    failed = tuple(n for n in running if health.get(n) == Health.FAILED)
    live = [n for n in running if n not in failed]
    new = [n for n in wanted if n in live]
    old = [n for n in live if n not in wanted]
    healthy_new = [n for n in new if health.get(n) == Health.HEALTHY]
    started_new = [n for n in new if n not in healthy_new]
    if not old:
        waiting = "" if len(healthy_new) == scale else _waiting_for(wanted, healthy_new)
        return Step(tuple(wanted), (), failed, waiting)
    # Healthy old replicas are kept first; as many as the healthy new ones do not replace.
    by_health = sorted(old, key=lambda n: health.get(n) != Health.HEALTHY)
    keep = tuple(by_health[: max(0, scale - len(healthy_new))])
    run = [*healthy_new, *started_new]
    if not started_new and len(run) < scale:
        run.append(next(n for n in wanted if n not in run))
    done = len(healthy_new)
    if done == scale and not keep:  # the last old replica goes now: the rollout is over
        return Step(tuple(wanted), (), failed, "")
    waiting = f"rolling out: {done} of {scale} replicas updated, {len(keep)} old serving"
    if started_new:
        waiting += f"; waiting for {', '.join(started_new)} to pass its health check"
    return Step(tuple(n for n in wanted if n in run), keep, failed, waiting)


def _waiting_for(wanted: Sequence[str], healthy: Sequence[str]) -> str:
    unhealthy = [n for n in wanted if n not in healthy]
    return (
        f"{len(healthy)} of {len(wanted)} replicas healthy; "
        f"waiting for {', '.join(unhealthy)} to pass its health check"
    )
