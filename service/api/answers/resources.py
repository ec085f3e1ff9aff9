"""Answers about resources: the resource view, its history, logs, outputs, credentials,
and what applying or planning a recipe did."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from service.api.answers.base import Answer, Timestamp

# A recipe as the API takes and gives it (the full schema is recipes/schema.json).
RECIPE: dict[str, Any] = {
    "type": "object",
    "description": "a recipe; JSON Schema: recipes/schema.json",
}


class ProcessAnswer(Answer):
    name: str
    role: str
    state: str = Field(description="starting, queued, running or exited")
    exit_code: int | None
    started_at: Timestamp
    finished_at: Timestamp | None
    endpoints: dict[str, str] | None
    node: str | None = Field(description="where the backend placed it")
    gpus: list[str] | None = Field(description="GPU UUIDs it holds")
    health: str | None = Field(
        default=None,
        description="a deployment's replica: healthy, unknown (not passed its health check "
        "yet: no traffic) or failed (being replaced); None for other processes",
    )


class WorkersAnswer(Answer):
    ready: int = Field(
        description="workers that joined their cluster (a deployment: healthy replicas)"
    )
    wanted: int = Field(description="workers the cluster asks for now (a deployment: its scale)")


class ResourceAnswer(Answer):
    """A resource: what it should be (target), what it is (status, with the reason)."""

    id: str
    owner: str
    type: str
    name: str
    generation: int
    observed_generation: int
    target: str = Field(description="running, stopped or deleted")
    status: str = Field(description="see the README's status table")
    status_reason: str | None
    status_changed_at: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    endpoints: dict[str, str]
    workers: WorkersAnswer | None = Field(description="a cluster's workers; None: no cluster")
    worker_names: list[str] | None
    processes: list[ProcessAnswer]


class StatusChange(Answer):
    at: Timestamp
    from_: str | None = Field(alias="from")
    to: str
    reason: str | None
    generation: int | None


class LogChunk(Answer):
    text: str
    offset: int = Field(description="ask again from here for what follows")
    run: str = Field(description="this start of the process; offsets begin again when it changes")


class LogsAnswer(Answer):
    processes: dict[str, LogChunk]


class OutputFile(Answer):
    path: str
    size: int
    modified: Timestamp


class OutputsAnswer(Answer):
    files: list[OutputFile]
    skipped: list[str] = Field(description="links and special files, never served")
    truncated: bool
    run: int | None = Field(
        default=None, description="the job's run these are of (None: the job's own folder)"
    )


class RunAnswer(Answer):
    """One run of a job: why it began, when, and how it ended."""

    number: int = Field(description="1, 2, ... per job")
    trigger: Literal["schedule", "manual", "retry"]
    status: Literal[
        "running", "succeeded", "failed", "timed_out", "lost", "stopped", "skipped", "missed"
    ]
    reason: str = Field(description="why it ended so, or why it did not run")
    attempt: int = Field(description="1, then 2, 3... for its retries")
    generation: int = Field(description="the recipe's generation it ran")
    scheduled_for: Timestamp | None = Field(description="the due time it filled (schedule)")
    created_at: Timestamp
    started_at: Timestamp | None = Field(description="None: it never began (skipped, missed)")
    finished_at: Timestamp | None = Field(description="None: it goes on")
    exit_code: int | None
    telemetry: str | None = Field(
        description="its samples in the monitoring store: the API path of one metric over "
        "its run (change metric=)"
    )


class CredentialsAnswer(Answer):
    """How to reach a cluster: its engine's address and credentials (only those it has)."""

    engine: str
    address: str | None
    scheduler: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    ray_token: str | None = None


class FieldChange(Answer):
    path: str
    old: Any
    new: Any


class ProcessChanges(Answer):
    start: list[str]
    restart: list[str]
    stop: list[str]
    unchanged: list[str]


class PlanAnswer(Answer):
    """What applying the recipe would do, changing nothing."""

    action: Literal["create", "update", "unchanged"]
    changes: list[FieldChange]
    processes: ProcessChanges


class AppliedPlan(Answer):
    changes: list[FieldChange]
    processes: ProcessChanges


class ApplyAnswer(Answer):
    action: Literal["created", "updated", "unchanged"]
    resource: ResourceAnswer
    plan: AppliedPlan
