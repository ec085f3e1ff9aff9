"""Database tables. Every row a user created survives a control-plane restart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored without zone and always read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    """Base of all Titan tables."""


class User(Base):
    """A person (or robot) who owns resources."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    # A disabled user's tokens are refused and their resources stopped (core/identity/users.py).
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Token(Base):
    """An API token; only the SHA-256 of its secret is stored."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    resource_id: Mapped[str | None] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), default=None
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship()


class Resource(Base):
    """One workspace, cluster or job: its recipe, desired target and observed status."""

    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("owner", "type", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))  # a user or a group
    created_by: Mapped[str] = mapped_column(String(63), default="")  # the user who applied it
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(63))
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The recipe before the latest change (what ``rollback`` applies again); None if none.
    previous_recipe: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), default=None
    )
    generation: Mapped[int] = mapped_column(default=1)
    observed_generation: Mapped[int] = mapped_column(default=0)
    target: Mapped[str] = mapped_column(String(20))
    # Why the control plane changed the target itself (e.g. idle); empty for a user's request.
    target_reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # A job's schedule counts due times from here: when its schedule (or time zone, or
    # suspension) was last applied; None without a schedule.
    schedule_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The named Dask workers the control plane keeps (None until first started).
    workers: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    processes: Mapped[list[Process]] = relationship(
        back_populates="resource", cascade="all, delete-orphan", order_by="Process.name"
    )

    @property
    def key(self) -> str:
        """``owner/type/name``: how users, processes (TITAN_RESOURCE) and metrics name it."""
        return f"{self.owner}/{self.type}/{self.name}"


class StatusEvent(Base):
    """One status change of a resource: when, from, to, and why."""

    __tablename__ = "status_events"
    __table_args__ = (Index("ix_status_events_resource", "resource_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(default=1)


class JobRun(Base):
    """One run of a job: why it began (schedule, manual, retry), when, and how it ended.

    Written in the transaction that asks for its processes, so a control plane killed at
    any moment neither loses nor repeats it; a due time has at most one row (scheduled,
    skipped or missed), which is what keeps a restart from starting it twice.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("resource_id", "number"),
        UniqueConstraint("resource_id", "scheduled_for"),
        Index("ix_job_runs_open", "finished_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()  # 1, 2, ... per job: what users call the run
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | manual | retry
    # The due time a scheduled (or skipped, or missed) run fills; None for the others.
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    attempt: Mapped[int] = mapped_column(default=1)  # 1, then 2... for its retries
    generation: Mapped[int] = mapped_column(default=1)  # of the recipe it ran
    status: Mapped[str] = mapped_column(String(20))  # a RunStatus
    reason: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The handle of its job process once started: where its logs stay readable.
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)


class Process(Base):
    """One process of a resource as last checkpointed: what the backend reported."""

    __tablename__ = "processes"
    __table_args__ = (UniqueConstraint("resource_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    spec_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))  # a Phase: starting, queued, running, exited
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    endpoints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The address of its cluster's head it was started against (column named before
    # there were engines other than Dask).
    cluster_address: Mapped[str | None] = mapped_column(
        "scheduler_address", String(200), default=None
    )
    ports: Mapped[dict[str, int] | None] = mapped_column(JSON, default=None)
    gpus: Mapped[list[str]] = mapped_column(JSON, default=list)
    node: Mapped[str | None] = mapped_column(String(255), default=None)  # where it landed
    # The share of each GPU in ``gpus`` this process holds: 1.0 whole, less when fractional.
    gpu_share: Mapped[float] = mapped_column(Double, default=1.0)
    cpu: Mapped[float] = mapped_column(default=0.0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    exit_code: Mapped[int | None] = mapped_column(default=None)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    resource: Mapped[Resource] = relationship(back_populates="processes")


class Node(Base):
    """A machine processes are placed on, and what it offers."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    cpus: Mapped[float] = mapped_column(default=0.0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    gpus: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    address: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(100), default="up")  # in the backend's words
    schedulable: Mapped[bool] = mapped_column(default=True)  # new work may go there
    reason: Mapped[str] = mapped_column(String(500), default="")  # why not, if not
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SampleChunk(Base):
    """Raw samples of one source sent together: times and metric columns packed as doubles
    (see :mod:`service.monitoring.chunks`)."""

    __tablename__ = "sample_chunks"
    __table_args__ = (
        Index("ix_sample_chunks_resource_start", "resource_id", "start_at"),
        Index("ix_sample_chunks_end", "end_at"),
        Index("ix_sample_chunks_rolled", "rolled", "end_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(120))
    start_at: Mapped[float] = mapped_column(Double)  # first sample, epoch seconds
    end_at: Mapped[float] = mapped_column(Double)  # last sample
    received_at: Mapped[float] = mapped_column(Double)  # when the server stored it
    rolled: Mapped[bool] = mapped_column(default=False)  # its minutes are rolled up
    count: Mapped[int] = mapped_column()
    metrics: Mapped[list[str]] = mapped_column(JSON)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Rollup(Base):
    """One minute of one metric of one source: average, minimum, maximum and count."""

    __tablename__ = "rollups"
    # Clustered on its key in SQLite: a query reads one resource's metric minute by minute.
    __table_args__ = (Index("ix_rollups_minute", "minute"), {"sqlite_with_rowid": False})

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(63), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds, whole minute
    source: Mapped[str] = mapped_column(String(120), primary_key=True)
    avg: Mapped[float] = mapped_column(Double)
    min: Mapped[float] = mapped_column(Double)
    max: Mapped[float] = mapped_column(Double)
    count: Mapped[int] = mapped_column()


class AlertRule(Base):
    """A rule added through the API (rules from settings are not stored)."""

    __tablename__ = "alert_rules"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    metric: Mapped[str] = mapped_column(String(63))
    comparison: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Double)
    for_seconds: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertEvent(Base):
    """An alert firing or resolving for one source of one resource."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_open", "rule", "resource_id", "source", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(63))
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(10))  # firing | resolved
    value: Mapped[float | None] = mapped_column(Double, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Reclaim(Base):
    """A resource stopped for being idle, and the GPU time that gave back."""

    __tablename__ = "reclaims"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    idle_seconds: Mapped[float] = mapped_column(Double)
    gpus: Mapped[int] = mapped_column()
    gpu_seconds: Mapped[float] = mapped_column(Double)
    reason: Mapped[str] = mapped_column(Text)


class Group(Base):
    """A team: its members see and use what the group owns."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[GroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan"
    )


class GroupMember(Base):
    """A user in a group: ``member`` (sees and uses) or ``admin`` (also changes)."""

    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(10), default="member")

    group: Mapped[Group] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class Quota(Base):
    """Limits of one owner (user or group); a missing limit means the settings' default."""

    __tablename__ = "quotas"

    owner: Mapped[str] = mapped_column(String(63), primary_key=True)
    gpus: Mapped[float | None] = mapped_column(Double, default=None)
    cpus: Mapped[float | None] = mapped_column(Double, default=None)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    resources: Mapped[int | None] = mapped_column(default=None)


class Secret(Base):
    """A named secret; only its Fernet token (never the value) is stored."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Image(Base):
    """A container image recipes may use: ``name:tag``, optionally pinned to a digest."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("owner", "name", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str | None] = mapped_column(String(100), default=None)
    public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """One mutating API call: who, what, when, and how it ended."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # user name, "user (resource key)" or "-"
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(1000))
    status: Mapped[int] = mapped_column()
    client: Mapped[str] = mapped_column(String(100), default="")


class Allocation(Base):
    """What one process held and for how long: the source of usage reports.

    Written when a process is placed; ``ended_at`` is set once the process is
    gone or exited. Kept after the process and even the resource are forgotten.
    """

    __tablename__ = "allocations"
    __table_args__ = (
        Index("ix_allocations_open", "ended_at"),
        Index("ix_allocations_owner_start", "owner", "started_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    process_id: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(String(63))
    resource: Mapped[str] = mapped_column(String(200))  # owner/type/name
    process: Mapped[str] = mapped_column(String(100))
    gpus: Mapped[float] = mapped_column(Double, default=0.0)  # GPUs held (shares summed)
    cpu: Mapped[float] = mapped_column(Double, default=0.0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Folder(Base):
    """A named shared folder: a directory (local backend) or a named volume (docker)."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClusterCredential(Base):
    """The TLS certificate and key of one cluster's Dask processes (and its owner's clients),
    encrypted like secrets."""

    __tablename__ = "cluster_credentials"

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
