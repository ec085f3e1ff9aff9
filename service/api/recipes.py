"""Apply and plan recipes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from service.api.deps import CurrentPrincipal, TitanDep
from service.errors import UnsupportedMediaType
from service.json_values import decode_json

router = APIRouter(prefix="/api/v1/recipes", tags=["recipes"])
_SCHEMA = {"type": "object", "description": "a recipe; JSON Schema: recipes/schema.json"}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}}}


async def read_json(request: Request) -> Any:
    """The request body as JSON; 415 if it is not JSON, 400 if it does not parse,
    422 naming the path of a value Titan would not store (see ``decode_json``)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"send the recipe as JSON with 'Content-Type: application/json' "
            f"(got {content_type or 'none'!r})"
        )
    return decode_json(await request.body())


@router.put("", openapi_extra=_BODY)
async def apply_recipe(
    request: Request, response: Response, titan: TitanDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Create or update the resource the recipe describes (201 created, 200 otherwise)."""
    data = await read_json(request)
    result = await asyncio.to_thread(titan.resources.apply, principal, data)
    response.status_code = 201 if result["action"] == "created" else 200
    return result


@router.post("/plan", openapi_extra=_BODY)
async def plan_recipe(
    request: Request, titan: TitanDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """What applying the recipe would change and restart; applies nothing."""
    data = await read_json(request)
    return await asyncio.to_thread(titan.resources.plan, principal, data)
