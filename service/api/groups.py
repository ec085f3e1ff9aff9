"""Groups and their members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.answers.accounts import GroupAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.core.identity.groups import Role

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])


class NewGroup(BaseModel):
    """A group to create."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="DNS label, not used by any user or group")
    admins: list[str] = Field(default_factory=list, max_length=100, description="user names")


class Membership(BaseModel):
    """A member's role in a group."""

    model_config = ConfigDict(extra="forbid")
    role: Role = Field(default="member", description="member (see and use) or admin (change)")


@router.get("", response_model=list[GroupAnswer])
def list_groups(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The caller's groups (every group for admins)."""
    return titan.groups.list(principal)


@router.post("", status_code=201, response_model=GroupAnswer)
def create_group(body: NewGroup, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new group (admins)."""
    return titan.groups.create(principal, body.name, body.admins)


@router.get("/{name}", response_model=GroupAnswer)
def get_group(name: str, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One group and its members."""
    return titan.groups.get(principal, name)


@router.delete("/{name}", status_code=204)
def delete_group(name: str, titan: TitanDep, principal: CurrentPrincipal) -> Response:
    """Remove a group that owns nothing (admins)."""
    titan.groups.delete(principal, name)
    return Response(status_code=204)


@router.put("/{name}/members/{user}", response_model=GroupAnswer)
def put_member(
    name: str, user: str, body: Membership, titan: TitanDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Add a member or change their role (group admins and admins)."""
    return titan.groups.set_member(principal, name, user, body.role)


@router.delete("/{name}/members/{user}", response_model=GroupAnswer)
def delete_member(
    name: str, user: str, titan: TitanDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Take a member out of the group (group admins and admins)."""
    return titan.groups.remove_member(principal, name, user)
