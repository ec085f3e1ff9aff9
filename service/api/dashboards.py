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

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Header, Request, WebSocket
from fastapi.responses import Response

from service.api.deps import TitanDep
from service.api.relay import CHANGES, Door, relay_page, relay_socket_of
from service.core.workloads.dashboards import dashboard_path

if TYPE_CHECKING:
    from service.services import Titan

router = APIRouter(tags=["dashboards"], include_in_schema=False)


def door(titan: Titan, resource_id: str) -> Door:
    """A cluster's dashboard: its ticket reads, a lax cookie (links from elsewhere open it)."""
    path = dashboard_path(resource_id)
    return Door(titan.clusters.dashboard_upstream, "titan_dashboard", path, "lax", False)


@router.api_route("/dashboards/{resource_id}/{path:path}", methods=["GET", "HEAD", *CHANGES])
async def dashboard_page(
    resource_id: str,
    path: str,
    request: Request,
    titan: TitanDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """One page, file or API call of a cluster's dashboard (changes need the bearer
    token: a ticket only reads)."""
    return await relay_page(
        titan, request, resource_id, path, authorization, door(titan, resource_id)
    )


@router.websocket("/dashboards/{resource_id}/{path:path}")
async def dashboard_socket(websocket: WebSocket, resource_id: str, path: str) -> None:
    """The dashboard's live plots: a WebSocket relayed both ways."""
    titan: Titan = websocket.app.state.titan
    await relay_socket_of(websocket, resource_id, path, door(titan, resource_id))
