"""Registered images: what recipes may run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from service.api.answers.sharing import ImageAnswer
from service.api.deps import CurrentPrincipal, TitanDep

router = APIRouter(prefix="/api/v1/images", tags=["images"])


class NewImage(BaseModel):
    """An image to allow."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=255, description="e.g. 'nvcr.io/nvidia/pytorch'")
    tag: str = Field(default="latest", max_length=128, description="e.g. '24.01-py3'")
    owner: str | None = Field(default=None, description="a user or group; default: the caller")
    digest: str | None = Field(default=None, description="'sha256:...' to pin it")
    public: bool = Field(default=False, description="everyone may use it (admins only)")


@router.get("", response_model=list[ImageAnswer])
def list_images(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The images the caller's recipes may name."""
    return titan.images.list_visible(principal)


@router.post("", status_code=201, response_model=ImageAnswer)
def register_image(body: NewImage, titan: TitanDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Register an image so recipes of its owner (or everyone, if public) may run it."""
    return titan.images.register(
        principal, body.name, body.tag, body.owner, body.digest, body.public
    )


@router.delete("/{image_id}", status_code=204)
def delete_image(
    image_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
    titan: TitanDep,
    principal: CurrentPrincipal,
) -> Response:
    """Unregister an image."""
    titan.images.delete(principal, image_id)
    return Response(status_code=204)
