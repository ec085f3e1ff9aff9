"""The audit log and usage reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.answers.accounts import AuditEventAnswer, UsageAnswer
from service.api.deps import CurrentPrincipal, TitanDep

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=list[AuditEventAnswer])
def list_audit_events(
    titan: TitanDep,
    principal: CurrentPrincipal,
    actor: Annotated[str | None, Query(max_length=63, description="a user name")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    """Mutating API calls, newest first: who, what, when, result (admins)."""
    return titan.audit.events(principal, actor, since, limit)


@router.get("/usage", response_model=UsageAnswer)
def get_usage(
    titan: TitanDep,
    principal: CurrentPrincipal,
    start: Annotated[date | None, Query(alias="from", description="first UTC day")] = None,
    end: Annotated[date | None, Query(alias="to", description="last UTC day")] = None,
    owner: Annotated[str | None, Query(max_length=63, description="a user or group")] = None,
) -> dict[str, Any]:
    """GPU-hours and CPU-hours per owner and UTC day (default: the last 7 days); users see
    their own and their groups', admins everyone's."""
    return titan.usage.report(principal, start, end, owner)
