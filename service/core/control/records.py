"""The store side of the reconciler: recorded processes, their allocations and tokens.

Each function runs inside one session the caller opens (the reconciler runs
them in a thread), so every step commits or rolls back whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session, selectinload

from service.backends.base import Handle, handle_identity
from service.core.capacity.ledger import Request
from service.core.capacity.usage import record_allocation
from service.core.control.state import FINISHED, Phase, Status, Target, set_status
from service.core.identity.auth import issue_token
from service.core.workloads.worker_names import next_workers
from service.database.models import Process, Resource, Token, User, utcnow
from service.engines import engine_of
from service.engines.base import PlannedProcess
from service.recipes.models import Adaptive, ClusterFields, parse_recipe


def load_resource(session: Session, resource_id: str) -> Resource | None:
    return session.scalar(
        select(Resource).options(selectinload(Resource.processes)).where(Resource.id == resource_id)
    )


def lock_resource(session: Session, resource_id: str) -> Resource | None:
    """The resource, locked for the rest of the session's transaction: no other
    transaction changes it (or begins or ends one of its runs) until this one ends, and
    what this one reads next is current. (An UPDATE is the lock both stores take: SQLite
    its one writer's lock, PostgreSQL the row's.)"""
    same = {"generation": Resource.generation}  # writes nothing new: the lock is the point
    session.execute(update(Resource).where(Resource.id == resource_id).values(same))
    return load_resource(session, resource_id)


def due_resources(session: Session) -> list[str]:
    """The resources a resync re-checks: every one not backing off, except those settled
    (stopped as asked, or a job that ended; at their latest generation; no process but
    exited ones), which nothing but a request changes, and a request wakes them."""
    now = utcnow()
    live_process = exists().where(Process.resource_id == Resource.id, Process.state != Phase.EXITED)
    settled = and_(
        or_(
            and_(Resource.target == Target.STOPPED, Resource.status.in_(FINISHED)),
            and_(Resource.type == "job", Resource.status == Status.SUCCEEDED),
        ),
        Resource.observed_generation == Resource.generation,
        ~live_process,
    )
    query = select(Resource.id).where(
        or_(Resource.next_attempt_at.is_(None), Resource.next_attempt_at <= now), ~settled
    )
    return list(session.scalars(query))


def recorded_processes(session: Session) -> set[tuple[Any, Any, Any]]:
    """The identity (see ``handle_identity``) of every process with a stored handle."""
    rows = session.scalars(select(Process).where(Process.handle.is_not(None)))
    return {handle_identity(p.handle or {}) for p in rows}


def prepare_process(
    session: Session,
    resource_id: str,
    planned: PlannedProcess,
    ports: dict[str, int],
    allocation: Callable[..., Any],
) -> tuple[str, list[str]]:
    """Record the process as starting with its ports and allocation and mint its token.

    Returns the token's secret and the allocated GPU UUIDs; Unplaceable if it does not fit.
    """
    resource = session.get(Resource, resource_id)
    if resource is None:
        raise LookupError(f"resource {resource_id} vanished")
    # The token's user: the owner, or for a group's resource the user who applied it.
    # (A resource token acts only for its resource, whoever its user is.)
    owner = session.scalar(
        select(User).where(User.name.in_([resource.owner, resource.created_by])).limit(1)
    )
    if owner is None:
        raise LookupError(
            f"neither owner {resource.owner!r} nor creator {resource.created_by!r} "
            f"of {resource.name!r} exists any more"
        )
    session.execute(
        delete(Process).where(Process.resource_id == resource_id, Process.name == planned.name)
    )
    gpus: list[str] = allocation(session, request_of(planned), resource.owner)
    process = Process(
        resource_id=resource_id,
        name=planned.name,
        role=planned.role,
        spec_hash=planned.spec_hash,
        state=Phase.STARTING,
        endpoints={},
        ports=ports,
        gpus=gpus,
        gpu_share=planned.gpu if 0 < planned.gpu < 1 else 1.0,
        cpu=planned.cpu,
        memory_bytes=planned.memory_bytes,
    )
    session.add(process)
    session.flush()
    record_allocation(session, process, resource.owner, resource.key)
    secret = issue_token(session, owner, name=f"process:{planned.name}", resource_id=resource_id)
    return secret, gpus


def request_of(*processes: PlannedProcess) -> Request:
    """What ``processes`` ask of the ledger together."""
    return Request(
        cpu=sum(p.cpu for p in processes),
        memory_bytes=sum(p.memory_bytes for p in processes),
        gpus=sum(int(p.gpu) for p in processes if p.gpu >= 1),
        shares=tuple(p.gpu for p in processes if 0 < p.gpu < 1),
    )


def find_process(session: Session, resource_id: str, name: str) -> Process | None:
    return session.scalar(
        select(Process).where(Process.resource_id == resource_id, Process.name == name)
    )


def checkpoint(session: Session, resource_id: str, name: str, handle: Handle) -> None:
    process = find_process(session, resource_id, name)
    if process is not None:
        process.handle = handle


def handle_of(session: Session, resource_id: str, name: str) -> Handle | None:
    process = find_process(session, resource_id, name)
    return process.handle if process is not None else None


def mark_started(
    session: Session,
    resource_id: str,
    name: str,
    endpoints: dict[str, str],
    address: str | None,
    node: str | None = None,
    gpus: list[str] | None = None,
) -> None:
    """Record the process as serving at ``endpoints`` (against its cluster's head at
    ``address``), on ``node`` with ``gpus`` where the backend said which."""
    process = find_process(session, resource_id, name)
    if process is not None:
        process.state = Phase.RUNNING
        process.endpoints = endpoints
        process.cluster_address = address
        process.node = node
        if gpus is not None:
            process.gpus = list(gpus)


def mark_queued(session: Session, resource_id: str, name: str, address: str | None) -> None:
    """Record the process as queued by the backend's scheduler (started against ``address``)."""
    process = find_process(session, resource_id, name)
    if process is not None:
        process.state = Phase.QUEUED
        process.cluster_address = address


def ports_of(session: Session, resource_id: str, name: str) -> dict[str, int]:
    """The ports the process was given."""
    process = find_process(session, resource_id, name)
    return dict(process.ports or {}) if process is not None else {}


def running_names(session: Session, resource_id: str) -> set[str]:
    """The names of the resource's processes that run (started and seen up)."""
    query = select(Process.name).where(
        Process.resource_id == resource_id, Process.state == Phase.RUNNING
    )
    return set(session.scalars(query))


def mark_observed(session: Session, resource_id: str, generation: int) -> None:
    resource = session.get(Resource, resource_id)
    if resource is not None:
        resource.observed_generation = generation


def running_head(
    session: Session, resource_id: str, head: str
) -> tuple[dict[str, int], dict[str, str], Handle | None] | None:
    """The ports, endpoints and handle of the cluster's head ``head`` while it runs."""
    process = find_process(session, resource_id, head)
    if process is None or process.state != "running":
        return None
    return dict(process.ports or {}), dict(process.endpoints or {}), process.handle


def forget_processes(session: Session, resource_id: str, names: list[str]) -> None:
    if names:
        session.execute(
            delete(Process).where(Process.resource_id == resource_id, Process.name.in_(names))
        )
        revoke_tokens(session, resource_id, names)


def revoke_tokens(session: Session, resource_id: str, names: list[str]) -> None:
    if names:
        session.execute(
            delete(Token).where(
                Token.resource_id == resource_id,
                Token.name.in_([f"process:{name}" for name in names]),
            )
        )


def delete_resource(session: Session, resource_id: str) -> None:
    session.execute(delete(Token).where(Token.resource_id == resource_id))
    resource = session.get(Resource, resource_id)
    if resource is not None:
        session.delete(resource)


def worker_set(
    session: Session, resource_id: str, cluster: ClusterFields | None
) -> list[str] | None:
    """The cluster's worker names, resized to what its recipe asks for and stored.

    When it shrinks, workers that are not running go first.
    """
    resource = session.get(Resource, resource_id)
    if resource is None or cluster is None:
        return None
    running = {p.name for p in resource.processes if p.state == Phase.RUNNING}
    unstarted = [n for n in resource.workers or [] if n not in running]
    workers = next_workers(cluster, resource.workers, unstarted)
    if workers != resource.workers:
        resource.workers = workers
    return workers


def reset_workers(session: Session, resource_id: str) -> None:
    """Forget the worker set: the next start begins from the recipe's ``n_workers``."""
    resource = session.get(Resource, resource_id)
    if resource is not None:
        resource.workers = None


def change_workers(
    session: Session, resource_id: str, expected: list[str], workers: list[str], reason: str
) -> bool:
    """Replace the worker set if it is still ``expected``; the reason goes to the history."""
    resource = session.get(Resource, resource_id)
    if resource is None or resource.workers != expected or resource.target != Target.RUNNING:
        return False
    resource.workers = workers
    set_status(session, resource, Status(resource.status), reason)
    return True


def adaptive_clusters(
    session: Session,
) -> list[tuple[str, str, dict[str, str], list[str], Adaptive]]:
    """Every running resource with adaptive bounds and a serving head: its id, engine,
    head endpoints, worker set and bounds."""
    query = (
        select(Resource)
        .options(selectinload(Resource.processes))
        .where(Resource.target == Target.RUNNING, Resource.workers.is_not(None))
    )
    found: list[tuple[str, str, dict[str, str], list[str], Adaptive]] = []
    for resource in session.scalars(query):
        cluster = parse_recipe(resource.recipe).cluster
        if cluster is None or cluster.adaptive is None:
            continue
        head = engine_of(cluster.engine).head
        process = next((p for p in resource.processes if p.name == head), None)
        if process is not None and process.state == Phase.RUNNING and process.endpoints:
            workers = list(resource.workers or [])
            found.append(
                (resource.id, cluster.engine, dict(process.endpoints), workers, cluster.adaptive)
            )
    return found
