"""Secrets: values are accepted here and never returned."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.answers.sharing import ReencryptAnswer, SecretAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.api.resources import Owner

router = APIRouter(prefix="/api/v1/secrets", tags=["secrets"])


class NewSecret(BaseModel):
    """A secret to create."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="DNS label, unique per owner")
    value: str = Field(description="the value; never shown again", repr=False)
    owner: str | None = Field(default=None, description="a user or group; default: the caller")


class NewValue(BaseModel):
    """A secret's next value."""

    model_config = ConfigDict(extra="forbid")
    value: str = Field(description="the new value; never shown again", repr=False)


@router.get("", response_model=list[SecretAnswer])
def list_secrets(
    titan: TitanDep,
    principal: CurrentPrincipal,
    owner: Annotated[str | None, Query(description="only this owner's")] = None,
) -> list[dict[str, Any]]:
    """Names, owners, versions and dates of the secrets the caller may see: never values."""
    return titan.secrets.list_visible(principal, owner)


@router.post("", status_code=201, response_model=SecretAnswer)
def create_secret(body: NewSecret, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Store a secret, encrypted; the answer names it and never holds the value."""
    return titan.secrets.create(principal, body.name, body.value, body.owner)


@router.post("/reencrypt", response_model=ReencryptAnswer)
def reencrypt_secrets(titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Encrypt every secret again under the first key of TITAN_SECRET_KEYS (admins)."""
    return titan.secrets.reencrypt(principal)


@router.put("/{name}", response_model=SecretAnswer)
def rotate_secret(
    name: str, body: NewValue, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> dict[str, Any]:
    """Give a secret a new value; processes get it when they next start."""
    return titan.secrets.rotate(principal, name, body.value, owner)


@router.delete("/{name}", status_code=204)
def delete_secret(
    name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> Response:
    """Forget a secret."""
    titan.secrets.delete(principal, name, owner)
    return Response(status_code=204)
