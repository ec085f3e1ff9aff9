"""Users and tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import CurrentPrincipal, TitanDep

router = APIRouter(prefix="/api/v1", tags=["users"])


class NewUser(BaseModel):
    """A user to create."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="DNS label")
    is_admin: bool = False


class NewToken(BaseModel):
    """A token to create."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200, description="what the token is for")
    user: str | None = Field(default=None, description="admins only: another user's name")


@router.get("/users/me")
def me(titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Who the token belongs to."""
    return titan.users.me(principal)


@router.get("/users")
def list_users(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Every user (admins only)."""
    return titan.users.list(principal)


@router.post("/users", status_code=201)
def create_user(body: NewUser, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new user and its first token, shown only in this answer (admins only)."""
    return titan.users.create(principal, body.name, body.is_admin)


@router.post("/tokens", status_code=201)
def create_token(body: NewToken, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new token, shown only in this answer."""
    return titan.users.create_token(principal, body.name, body.user)
