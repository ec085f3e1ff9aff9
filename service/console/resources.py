"""The resources page: everything the user may see, live, with start, stop and delete."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import HEADERS, local_path, render
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


async def listed(
    titan: Titan, principal: Principal, type: str | None, owner: str | None
) -> tuple[bytes, ...]:
    """Every page of the API's listing the user may see, as the listing remembers them
    (unchanged bytes while no resource changes)."""
    if type and type not in RESOURCE_TYPES:
        raise InvalidInput(f"type: {type!r} is not one of {', '.join(RESOURCE_TYPES)}")
    bodies: list[bytes] = []
    after: str | None = ""
    while after is not None:
        body, after = await titan.listing.page(
            principal, type or None, owner or None, PAGE_MOST, after or None
        )
        bodies.append(body)
    return tuple(bodies)


async def rows(
    titan: Titan, principal: Principal, bodies: tuple[bytes, ...], status: str | None
) -> list[dict[str, Any]]:
    """The listed resources with ``status`` (any if None), each with its page, engine and
    GPUs."""
    views = [view for body in bodies for view in json.loads(body)]
    views = [v for v in views if not status or v["status"] == status]
    engines = await asyncio.to_thread(titan.resources.engines, [v["id"] for v in views])
    for view in views:
        view["page"] = resource_path(view, principal)
        view["engine"] = engines.get(view["id"], "")
        view["gpus"] = sum(len(p["gpus"] or []) for p in view["processes"])
    return views


class Tables:
    """The tables last sent to each session and query, with the listing they showed: a
    refresh while nothing changed sends the same bytes without rendering them again."""

    def __init__(self, most: int = 1000) -> None:
        self.most = most
        self.sent: dict[tuple[str, str], tuple[tuple[bytes, ...], bytes]] = {}

    def get(self, key: tuple[str, str], bodies: tuple[bytes, ...]) -> bytes | None:
        kept = self.sent.get(key)
        return kept[1] if kept is not None and kept[0] == bodies else None

    def keep(self, key: tuple[str, str], bodies: tuple[bytes, ...], table: bytes) -> None:
        if len(self.sent) >= self.most:
            self.sent.pop(next(iter(self.sent)))
        self.sent[key] = (bodies, table)


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
        resources=await rows(titan, principal, await listed(titan, principal, type, owner), status),
        filters={"type": type or "", "status": status or "", "owner": owner or ""},
        types=RESOURCE_TYPES,
        statuses=[s.value for s in Status],
        query=request.url.query,
        filtered=bool(type or status or owner),
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
    """The table alone, for the page's periodic refresh."""
    bodies = await listed(titan, principal, type, owner)
    tables: Tables = request.app.state.console_tables
    key = (request.state.csrf, request.url.query)
    table = tables.get(key, bodies)
    if table is None:
        table = bytes(
            render(
                request,
                "resource_rows.html",
                principal,
                "Resources",
                resources=await rows(titan, principal, bodies, status),
                query=request.url.query,
                filtered=bool(type or status or owner),
            ).body
        )
        tables.keep(key, bodies, table)
    return HTMLResponse(table, headers=HEADERS)


# One route per action, not ``/{action}``: that would also catch the resource page's own
# posts (plan, apply, scale) and answer them 404.
def _act(target: Target) -> Any:
    def act(
        type: str,
        name: str,
        titan: TitanDep,
        principal: Changing,
        owner: Annotated[str | None, Form()] = None,
        back: Annotated[str, Form()] = "/",
    ) -> Response:
        titan.resources.set_target(principal, type, name, owner or None, target)
        return RedirectResponse(local_path(back), status_code=303)

    act.__doc__ = "Record the wish, then back to the page the button was on."
    return act


for _action, _target in ACTIONS.items():
    router.add_api_route(f"/resources/{{type}}/{{name}}/{_action}", _act(_target), methods=["POST"])
