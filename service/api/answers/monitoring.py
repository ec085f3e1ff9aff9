"""Answers about what runs and how it does: nodes, telemetry, alerts, idle reclaims."""

from __future__ import annotations

from pydantic import Field

from service.api.answers.base import Answer, Timestamp


class HealthAnswer(Answer):
    status: str


class NodeGPU(Answer):
    index: int
    uuid: str
    model: str
    memory_bytes: int
    holder: str | None = Field(description="owner/type/name of who holds it")
    used: float = Field(description="the share of it held (1.0: whole)")


class Overcommit(Answer):
    cpu: float
    memory: float


class Promised(Answer):
    cpu: float
    memory_bytes: int


class Allocated(Answer):
    cpu: float
    memory_bytes: int
    gpus: float


class NodeAnswer(Answer):
    name: str
    address: str
    state: str = Field(description="in the backend's own words")
    schedulable: bool
    reason: str | None
    cpus: float
    memory_bytes: int
    overcommit: Overcommit
    promised: Promised = Field(description="capacity times the overcommit")
    allocated: Allocated
    gpus: list[NodeGPU]
    updated_at: Timestamp


class Accepted(Answer):
    accepted: int


class Reading(Answer):
    source: str
    process: str
    time: float
    values: dict[str, float]
    info: dict[str, str]


class CurrentAnswer(Answer):
    id: str
    owner: str
    type: str
    name: str
    status: str
    status_reason: str | None
    sources: list[Reading]


class MetricName(Answer):
    name: str
    description: str | None = Field(description="None for a name only a job stored")
    standard: bool = Field(description="reported by Titan's samplers (else: stored by a job)")


class Series(Answer):
    source: str
    points: list[tuple[float, float]]


class TelemetryAnswer(Answer):
    resource: str
    metric: str
    from_: float = Field(alias="from")
    to: float
    step: float
    agg: str
    resolution: str = Field(description="raw samples or 1m rollups")
    series: list[Series]


class AlertEvent(Answer):
    id: int
    rule: str
    resource_id: str
    source: str
    state: str = Field(description="firing or resolved")
    value: float | None
    message: str
    at: Timestamp
    resolved_at: Timestamp | None
    resource: str | None = None


class AlertRuleAnswer(Answer):
    metric: str
    comparison: str
    threshold: float
    for_seconds: float
    name: str
    origin: str = Field(description="settings or api")


class Reclaim(Answer):
    resource: str
    at: Timestamp
    idle_seconds: float
    gpus: float
    gpu_seconds: float
    reason: str


class ReclaimsAnswer(Answer):
    gpu_seconds: float
    reclaims: list[Reclaim]
