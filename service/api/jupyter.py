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

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Header, Request, WebSocket
from fastapi.responses import Response

from service.api.deps import TitanDep
from service.api.relay import CHANGES, Door, relay_page, relay_socket_of
from service.core.workloads.dashboards import jupyter_path

if TYPE_CHECKING:
    from service.services import Titan

router = APIRouter(tags=["jupyter"], include_in_schema=False)


def door(titan: Titan, resource_id: str) -> Door:
    """A workspace's JupyterLab: its ticket does everything, so its cookie is strict."""
    path = jupyter_path(resource_id)
    return Door(titan.resources.jupyter_upstream, "titan_workspace", path, "strict", True)


@router.api_route("/jupyter/{resource_id}/{path:path}", methods=["GET", "HEAD", *CHANGES])
async def jupyter_page(
    resource_id: str,
    path: str,
    request: Request,
    titan: TitanDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """One page, file or API call of a workspace's JupyterLab."""
    return await relay_page(
        titan, request, resource_id, path, authorization, door(titan, resource_id)
    )


@router.websocket("/jupyter/{resource_id}/{path:path}")
async def jupyter_socket(websocket: WebSocket, resource_id: str, path: str) -> None:
    """A kernel's channels (and JupyterLab's other sockets), relayed both ways."""
    titan: Titan = websocket.app.state.titan
    await relay_socket_of(websocket, resource_id, path, door(titan, resource_id))
