"""Apply and plan recipes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from service.api.answers.imports import ImportAnswer
from service.api.answers.resources import RECIPE, ApplyAnswer, PlanAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.core.workloads.imports import import_saturn
from service.errors import InvalidInput, UnsupportedMediaType
from service.json_text import YAML_HINT
from service.json_values import decode_json

router = APIRouter(prefix="/api/v1/recipes", tags=["recipes"])
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": RECIPE}}}}
_SATURN = {"type": "object", "description": "a Saturn Cloud resource recipe (2022 or 2025.10.01)"}
_SATURN_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _SATURN}}}
}


async def read_json(request: Request) -> Any:
    """The request body as JSON; 415 if it is not JSON (saying how to convert YAML), 400
    naming the line and column if it does not parse (and how to convert YAML),
    422 naming the path of a value Titan would not store (see ``decode_json``)."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if "yaml" in kind:
        raise UnsupportedMediaType(f"{YAML_HINT}; send it with 'Content-Type: application/json'")
    if kind != "application/json":
        raise UnsupportedMediaType(
            f"send the recipe as JSON with 'Content-Type: application/json' "
            f"(got {content_type or 'none'!r})"
        )
    return decode_json(await request.body())


def generation_of(if_match: str | None) -> int | None:
    """The generation an ``If-Match`` header names (``"3"``, ``3`` or ``W/"3"``), None
    without one; 422 naming the header for anything else."""
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise InvalidInput(
            f"If-Match: {if_match[:40]!r} is not a generation; send the ETag of "
            'GET .../recipe (a number such as "3"), or "0" to create only if absent'
        )
    return int(value)


IfMatch = Annotated[
    str | None,
    Header(
        description="apply only if the resource is still at this generation "
        '(the ETag of GET .../recipe; "0": only if it does not exist), else 409'
    ),
]


@router.put("", openapi_extra=_BODY, response_model=ApplyAnswer)
async def apply_recipe(
    request: Request,
    response: Response,
    titan: TitanDep,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Create or update the resource the recipe describes (201 created, 200 otherwise);
    409 if ``If-Match`` names a generation the resource is no longer at."""
    expected = generation_of(if_match)
    data = await read_json(request)
    result = await asyncio.to_thread(titan.resources.apply, principal, data, expected)
    response.status_code = 201 if result["action"] == "created" else 200
    return result


@router.post("/plan", openapi_extra=_BODY, response_model=PlanAnswer)
async def plan_recipe(
    request: Request, titan: TitanDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """What applying the recipe would change and restart; applies nothing."""
    data = await read_json(request)
    return await asyncio.to_thread(titan.resources.plan, principal, data)


@router.post("/import/saturn", openapi_extra=_SATURN_BODY, response_model=ImportAnswer)
async def import_saturn_recipe(
    request: Request, titan: TitanDep, principal: CurrentPrincipal, lenient: bool = False
) -> dict[str, Any]:
    """Titan recipes made from a Saturn Cloud recipe, and how each of its fields went
    (kept, translated, dropped or refused, and why); applies nothing. 422 naming each
    field Titan cannot honour, unless ``lenient`` (then dropped, the reason reported)."""
    data = await read_json(request)
    return await asyncio.to_thread(import_saturn, titan.settings, principal, data, lenient)
