"""Answers about who uses Titan: users, tokens, groups, quotas, audit and usage."""

from __future__ import annotations

from pydantic import Field

from service.api.answers.base import Answer, Timestamp


class MeAnswer(Answer):
    name: str
    is_admin: bool
    resource_id: str | None = Field(description="set for a resource's own token")
    groups: list[str]
    group_admin_of: list[str]


class UserAnswer(Answer):
    name: str
    is_admin: bool
    disabled: bool
    created_at: Timestamp


class DisabledUser(UserAnswer):
    stopped: list[str] = Field(description="the resources stopped for it (owner/type/name)")


class NewUserAnswer(Answer):
    name: str
    is_admin: bool
    token: str = Field(description="its first token, shown only here")


class DeletedUser(Answer):
    deleted: str
    transferred_to: str | None = Field(description="who now owns what the user owned")
    resources: int | None = None
    secrets: int | None = None
    images: int | None = None
    folders: int | None = None


class TokenAnswer(Answer):
    id: int
    user: str
    name: str
    resource_id: str | None
    created_at: Timestamp
    expires_at: Timestamp | None
    expired: bool
    last_used_at: Timestamp | None


class NewTokenAnswer(TokenAnswer):
    token: str = Field(description="the secret, shown only here")


class Member(Answer):
    user: str
    role: str = Field(description="member or admin")


class GroupAnswer(Answer):
    name: str
    created_at: Timestamp
    members: list[Member]


class QuotaLimitsAnswer(Answer):
    """Effective limits (None: unlimited)."""

    gpus: float | None
    cpus: float | None
    memory_bytes: int | None
    resources: int | None


class QuotaUse(Answer):
    gpus: float
    cpus: float
    memory_bytes: int
    resources: int


class QuotaAnswer(Answer):
    owner: str
    limits: QuotaLimitsAnswer
    use: QuotaUse


class AuditEventAnswer(Answer):
    at: Timestamp
    actor: str
    method: str
    path: str
    status: int
    client: str | None


class UsageDay(Answer):
    owner: str
    day: str = Field(description="YYYY-MM-DD (UTC)")
    gpu_hours: float
    cpu_hours: float


class UsageAnswer(Answer):
    from_: str = Field(alias="from")
    to: str
    days: list[UsageDay]
