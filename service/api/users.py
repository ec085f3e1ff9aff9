"""Users and tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from service.api.answers.accounts import (
    DeletedUser,
    DisabledUser,
    MeAnswer,
    NewTokenAnswer,
    NewUserAnswer,
    TokenAnswer,
    UserAnswer,
)
from service.api.deps import CurrentPrincipal, TitanDep
from service.core.identity.auth import bearer_hash

router = APIRouter(prefix="/api/v1", tags=["users"])
TEN_YEARS = 10 * 365 * 24 * 3600


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
    expires_in: int | None = Field(
        default=None,
        ge=1,
        le=TEN_YEARS,
        description="seconds until the token expires (default: never; revoke it instead)",
    )


@router.get("/users/me", response_model=MeAnswer)
def me(titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Who the token belongs to."""
    return titan.users.me(principal)


@router.get("/users", response_model=list[UserAnswer])
def list_users(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Every user (admins only)."""
    return titan.users.list(principal)


@router.post("/users", status_code=201, response_model=NewUserAnswer)
def create_user(body: NewUser, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new user and its first token, shown only in this answer (admins only)."""
    return titan.users.create(principal, body.name, body.is_admin)


@router.post("/users/{name}/disable", response_model=DisabledUser)
def disable_user(name: str, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Refuse all the user's tokens at once and stop their resources (admins only)."""
    return titan.users.disable(principal, name)


@router.post("/users/{name}/enable", response_model=UserAnswer)
def enable_user(name: str, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Let a disabled user's tokens pass again (admins only)."""
    return titan.users.enable(principal, name)


@router.delete("/users/{name}", response_model=DeletedUser, response_model_exclude_unset=True)
def delete_user(
    name: str,
    titan: TitanDep,
    principal: CurrentPrincipal,
    transfer_to: Annotated[
        str | None,
        Query(max_length=63, description="user or group that gets what the user owns"),
    ] = None,
) -> dict[str, Any]:
    """Delete a user and their tokens (admins only); refused while they own anything,
    unless ``transfer_to`` names who gets it."""
    return titan.users.delete(principal, name, transfer_to)


@router.get("/tokens", response_model=list[TokenAnswer])
def list_tokens(
    titan: TitanDep,
    principal: CurrentPrincipal,
    user: Annotated[str | None, Query(max_length=63, description="admins: this user's")] = None,
) -> list[dict[str, Any]]:
    """Your tokens (or, for admins, a user's): ids, names and dates, never secrets."""
    return titan.tokens.list(principal, user)


@router.post("/tokens", status_code=201, response_model=NewTokenAnswer)
def create_token(body: NewToken, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new token, shown only in this answer."""
    return titan.tokens.create(principal, body.name, body.user, body.expires_in)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
    titan: TitanDep,
    principal: CurrentPrincipal,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Revoke one of your tokens (admins: anyone's) but the one this call is made with;
    it is refused from its next use."""
    titan.tokens.revoke(principal, token_id, bearer_hash(authorization))
    return Response(status_code=204)
