"""Shared folders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.answers.sharing import FolderAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.api.resources import Owner

router = APIRouter(prefix="/api/v1/folders", tags=["folders"])


class NewFolder(BaseModel):
    """A shared folder to create."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="DNS label, unique per owner")
    owner: str | None = Field(default=None, description="a user or group; default: the caller")


@router.get("", response_model=list[FolderAnswer])
def list_folders(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The shared folders the caller may mount."""
    return titan.folders.list_visible(principal)


@router.post("", status_code=201, response_model=FolderAnswer)
def create_folder(body: NewFolder, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A new, empty shared folder."""
    return titan.folders.create(principal, body.name, body.owner)


@router.delete("/{name}", status_code=204)
def delete_folder(
    name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> Response:
    """Forget a folder (its files stay on the node for an operator to remove)."""
    titan.folders.delete(principal, name, owner)
    return Response(status_code=204)
