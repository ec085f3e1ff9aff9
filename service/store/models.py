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

    user: Mapped[User] = relationship()


class Resource(Base):
    """One workspace, cluster or job: its recipe, desired target and observed status."""

    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("owner", "type", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(63))
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)
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


class Process(Base):
    """One process of a resource as last checkpointed: what the backend reported."""

    __tablename__ = "processes"
    __table_args__ = (UniqueConstraint("resource_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    spec_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))  # starting | running | exited
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    endpoints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scheduler_address: Mapped[str | None] = mapped_column(String(200), default=None)
    gpus: Mapped[list[str]] = mapped_column(JSON, default=list)
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
