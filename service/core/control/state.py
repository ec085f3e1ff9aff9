"""The target/status pair of a resource, its processes' phases, and the history of its
status."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from service.database.models import Resource, StatusEvent, utcnow


class Target(StrEnum):
    """What the user wants a resource to be."""

    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"


class Status(StrEnum):
    """What the resource is, as last observed."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"  # essential processes run; others are being replaced
    STOPPING = "stopping"
    STOPPED = "stopped"
    SUCCEEDED = "succeeded"  # a job whose program exited with code 0
    FAILED = "failed"  # a job that exited otherwise, or a resource that cannot start


class Phase(StrEnum):
    """Where one process of a resource is, as the control plane recorded it."""

    STARTING = "starting"  # asked of the backend; not yet known to serve
    QUEUED = "queued"  # the backend (Slurm) holds it until it places it
    RUNNING = "running"  # serves (its ready check passed)
    EXITED = "exited"  # ended; its exit code is recorded


SERVING = (Status.RUNNING, Status.DEGRADED)
"""Statuses of a resource that is up: its essential processes run (a degraded one's
others are being replaced), so it can be used, is expected to send samples, and
may be judged idle."""

FINISHED = (Status.STOPPED, Status.SUCCEEDED, Status.FAILED)
"""Statuses of a resource where nothing runs."""


def set_status(session: Session, resource: Resource, status: Status, reason: str) -> bool:
    """Move ``resource`` to ``status`` and keep the change in its history.

    A no-op (returns False) when both status and reason are unchanged.
    """
    if resource.status == status and resource.status_reason == reason:
        return False
    now = utcnow()
    session.add(
        StatusEvent(
            resource_id=resource.id,
            at=now,
            from_status=resource.status,
            to_status=status,
            reason=reason,
            generation=resource.generation,
        )
    )
    resource.status = status
    resource.status_reason = reason
    resource.status_changed_at = now
    return True
