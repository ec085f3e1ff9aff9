"""Workspaces' JupyterLab through the control plane: ``/jupyter/<resource id>/...``.

JupyterLab listens where only the control plane reaches it (127.0.0.1, a
container's published port on 127.0.0.1, a Slurm node's address) and serves
under this path (its ``base_url``). These routes relay its pages, API calls
and kernel WebSockets to the workspace's owner and admins (``Authorization:
Bearer``) and to holders of the workspace's ticket: the link the API shows
carries it, and the first visit turns it into a cookie scoped to this one
workspace, ``SameSite=Strict`` so no other site's page can send it. The
control plane adds JupyterLab's own token; users never need it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Header, Request, WebSocket
from fastapi.responses import Response
from starlette.requests import HTTPConnection

from service.api.deps import TitanDep
from service.api.relay import CHANGES, relay_request, relay_socket
from service.core.access import Principal
from service.core.dashboards import jupyter_path
from service.errors import TitanError

if TYPE_CHECKING:
    from service.app import Titan

router = APIRouter(tags=["jupyter"], include_in_schema=False)
COOKIE = "titan_workspace"


async def _upstream(
    titan: Titan,
    request: HTTPConnection,
    resource_id: str,
    authorization: str | None,
    ticket: str | None,
) -> tuple[str, dict[str, str]]:
    principal: Principal | None = None
    if authorization:
        client = request.client.host if request.client else ""
        principal = await titan.authenticate(authorization, client)
    return await asyncio.to_thread(titan.resources.jupyter_upstream, resource_id, principal, ticket)


@router.api_route("/jupyter/{resource_id}/{path:path}", methods=["GET", "HEAD", *CHANGES])
async def jupyter_page(
    resource_id: str,
    path: str,
    request: Request,
    titan: TitanDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """One page, file or API call of a workspace's JupyterLab."""
    given = request.query_params.get("ticket")
    ticket = given or request.cookies.get(COOKIE)
    base, added = await _upstream(titan, request, resource_id, authorization, ticket)
    response = await relay_request(titan.http, request, f"{base}/{path}", added, "ticket")
    if given:  # the link's ticket, kept for the page's own requests and sockets
        response.set_cookie(
            COOKIE, given, path=jupyter_path(resource_id), httponly=True, samesite="strict"
        )
    return response


@router.websocket("/jupyter/{resource_id}/{path:path}")
async def jupyter_socket(websocket: WebSocket, resource_id: str, path: str) -> None:
    """A kernel's channels (and JupyterLab's other sockets), relayed both ways."""
    titan: Titan = websocket.app.state.titan
    ticket = websocket.query_params.get("ticket") or websocket.cookies.get(COOKIE)
    try:
        base, added = await _upstream(
            titan, websocket, resource_id, websocket.headers.get("authorization"), ticket
        )
    except TitanError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    await relay_socket(websocket, f"{base}/{path}", added, "ticket")
