"""Cluster dashboards through the control plane: ``/dashboards/<resource id>/...``.

Each cluster's dashboard listens on 127.0.0.1 (or its resource's own network)
only, and these routes relay it — pages, JSON, the Dask dashboard's Bokeh
WebSockets, the Ray dashboard's APIs and Jobs API — to the owner, admins
(``Authorization: Bearer``) and holders of the cluster's dashboard ticket (the
link the API shows carries it; the first visit turns it into a cookie scoped
to this one dashboard). What changes something (POST, PUT, PATCH, DELETE: a
Ray job submitted or stopped) needs the bearer token: a ticket or cookie
alone reads only, so no other site can act through a user's browser. The
engine says where the request goes and what it adds (a Ray cluster's token).
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
from service.core.dashboards import dashboard_path
from service.errors import TitanError, Unauthenticated

if TYPE_CHECKING:
    from service.app import Titan

router = APIRouter(tags=["dashboards"], include_in_schema=False)
COOKIE = "titan_dashboard"


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
    return await asyncio.to_thread(
        titan.clusters.dashboard_upstream, resource_id, principal, ticket
    )


@router.api_route("/dashboards/{resource_id}/{path:path}", methods=["GET", "HEAD", *CHANGES])
async def dashboard_page(
    resource_id: str,
    path: str,
    request: Request,
    titan: TitanDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """One page, file or API call of a cluster's dashboard."""
    given = request.query_params.get("ticket")
    ticket = given or request.cookies.get(COOKIE)
    if request.method in CHANGES:
        if not authorization:
            raise Unauthenticated(
                f"{request.method} to a dashboard needs 'Authorization: Bearer <token>' "
                "(a dashboard link's ticket only reads)"
            )
        ticket = None
    base, added = await _upstream(titan, request, resource_id, authorization, ticket)
    response = await relay_request(titan.http, request, f"{base}/{path}", added, "ticket")
    if given:  # the link's ticket, kept for the page's scripts and sockets
        response.set_cookie(
            COOKIE,
            given,
            path=dashboard_path(resource_id),
            httponly=True,
            samesite="lax",
        )
    return response


@router.websocket("/dashboards/{resource_id}/{path:path}")
async def dashboard_socket(websocket: WebSocket, resource_id: str, path: str) -> None:
    """The dashboard's live plots: a WebSocket relayed both ways."""
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
