"""Quotas of users and groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from service.api.answers.accounts import QuotaAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.core.capacity.limits import QuotaLimits

router = APIRouter(prefix="/api/v1/quotas", tags=["quotas"])


@router.get("", response_model=list[QuotaAnswer])
def list_quotas(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Every owner with a quota of its own, with what it holds (admins)."""
    return titan.quotas.list(principal)


@router.get("/{owner}", response_model=QuotaAnswer)
def get_quota(owner: str, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A user's or group's limits and current use (the owner, its members, admins)."""
    return titan.quotas.get(principal, owner)


@router.put("/{owner}", response_model=QuotaAnswer)
def put_quota(
    owner: str, body: QuotaLimits, titan: TitanDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Set a user's or group's limits; fields left out follow the default (admins)."""
    return titan.quotas.put(principal, owner, body)


@router.delete("/{owner}", status_code=204)
def delete_quota(owner: str, titan: TitanDep, principal: CurrentPrincipal) -> Response:
    """Drop an owner's own limits so the default applies (admins)."""
    titan.quotas.delete(principal, owner)
    return Response(status_code=204)
