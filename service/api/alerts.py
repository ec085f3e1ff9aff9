"""Alerts: rules (settings and API), the events they caused, and idle reclaims."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from service.api.answers.monitoring import AlertEvent, AlertRuleAnswer, ReclaimsAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.monitoring.alert_rules import RULE_NAME_PATTERN, AlertRuleBody, AlertRuleSetting

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts", response_model=list[AlertEvent], response_model_exclude_unset=True)
def list_alerts(
    titan: TitanDep,
    principal: CurrentPrincipal,
    state: Annotated[str | None, Query(description="firing or resolved")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Alert events on the caller's resources (all for admins), newest first."""
    return titan.monitor.events(principal, state, limit)


@router.get("/alerts/rules", response_model=list[AlertRuleAnswer])
def list_rules(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Every alert rule, from settings and from the API."""
    return titan.monitor.rules(principal)


@router.put("/alerts/rules/{name}", response_model=AlertRuleAnswer)
def put_rule(
    name: Annotated[str, Path(pattern=RULE_NAME_PATTERN)],
    body: AlertRuleBody,
    titan: TitanDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Add or replace an alert rule (admins)."""
    rule = AlertRuleSetting(name=name, **body.model_dump())
    return titan.monitor.put_rule(principal, rule)


@router.delete("/alerts/rules/{name}", status_code=204)
def delete_rule(name: str, titan: TitanDep, principal: CurrentPrincipal) -> Response:
    """Remove an alert rule added through the API (admins)."""
    titan.monitor.delete_rule(principal, name)
    return Response(status_code=204)


@router.get("/reclaims", response_model=ReclaimsAnswer)
def list_reclaims(titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Resources stopped for being idle, and the GPU-seconds that gave back."""
    return titan.monitor.reclaims(principal)
