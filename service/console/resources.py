"""The resources page: everything the user may see, live, with start, stop and delete."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import local_path, render
from service.console.session import Changing, SignedIn
from service.core.control.state import Status, Target
from service.core.identity.access import Principal
from service.core.workloads.resources import PAGE_MOST
from service.errors import InvalidInput
from service.recipes.models import RESOURCE_TYPES
from service.services import Titan

router = APIRouter(include_in_schema=False)
ACTIONS = {"start": Target.RUNNING, "stop": Target.STOPPED, "delete": Target.DELETED}


def resource_path(view: dict[str, Any], principal: Principal) -> str:
    """The console page of a resource (owner named where it is not the viewer)."""
    path = f"/resources/{view['type']}/{view['name']}"
    return path if view["owner"] == principal.user_name else f"{path}?owner={view['owner']}"


async def rows(
    titan: Titan, principal: Principal, type: str | None, status: str | None, owner: str | None
) -> list[dict[str, Any]]:
    """The resources the user may see, filtered, each with its page, engine and GPUs (read
    through the API's listing, so a refresh with nothing changed costs no query of it)."""
    if type and type not in RESOURCE_TYPES:
        raise InvalidInput(f"type: {type!r} is not one of {', '.join(RESOURCE_TYPES)}")
    views: list[dict[str, Any]] = []
    after: str | None = ""
    while after is not None:
        body, after = await titan.listing.page(
            principal, type or None, owner or None, PAGE_MOST, after or None
        )
        views.extend(json.loads(body))
    views = [v for v in views if not status or v["status"] == status]
    engines = await asyncio.to_thread(titan.resources.engines, [v["id"] for v in views])
    for view in views:
        view["page"] = resource_path(view, principal)
        view["engine"] = engines.get(view["id"], "")
        view["gpus"] = sum(len(p["gpus"] or []) for p in view["processes"])
    return views


@router.get("/")
async def resources_page(
    request: Request,
    titan: TitanDep,
    principal: SignedIn,
    type: str | None = None,
    status: str | None = None,
    owner: str | None = None,
) -> Response:
    """Every resource the user may see, refreshed every few seconds."""
    return render(
        request,
        "resources.html",
        principal,
        "Resources",
        resources=await rows(titan, principal, type, status, owner),
        filters={"type": type or "", "status": status or "", "owner": owner or ""},
        types=RESOURCE_TYPES,
        statuses=[s.value for s in Status],
        query=request.url.query,
    )


@router.get("/resources/rows")
async def resource_rows(
    request: Request,
    titan: TitanDep,
    principal: SignedIn,
    type: str | None = None,
    status: str | None = None,
    owner: str | None = None,
) -> Response:
    """The table's body alone, for the page's periodic refresh."""
    return render(
        request,
        "resource_rows.html",
        principal,
        "Resources",
        resources=await rows(titan, principal, type, status, owner),
        query=request.url.query,
    )


# One route per action, not ``/{action}``: that would also catch the resource page's own
# posts (plan, apply, scale) and answer them 404.
@router.post("/resources/{type}/{name}/start")
@router.post("/resources/{type}/{name}/stop")
@router.post("/resources/{type}/{name}/delete")
def act(
    request: Request,
    type: str,
    name: str,
    titan: TitanDep,
    principal: Changing,
    owner: Annotated[str | None, Form()] = None,
    back: Annotated[str, Form()] = "/",
) -> Response:
    """Start, stop or delete a resource, then back to the page the button was on."""
    action = request.url.path.rpartition("/")[2]
    titan.resources.set_target(principal, type, name, owner or None, ACTIONS[action])
    return RedirectResponse(local_path(back), status_code=303)
