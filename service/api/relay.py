"""Relaying HTTP requests and WebSockets to a process behind the control plane.

The one front door: a cluster's dashboard (``/dashboards/<id>/``) and a
workspace's JupyterLab (``/jupyter/<id>/``) listen only where the control
plane reaches them (loopback, a resource's network, a Slurm node's address);
their routes check who asks, then relay here. Hop-by-hop headers never pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

import httpx
import websockets
from fastapi import Request, WebSocket
from fastapi.responses import Response
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from service.core.identity.access import Principal
from service.errors import TitanError, Unauthenticated

if TYPE_CHECKING:
    from service.services import Titan

# Where a resource's relayed process is, for a caller (or a ticket's holder): the URL its
# path goes after and the headers to add; raises if the caller may not.
Find = Callable[[str, Principal | None, str | None], tuple[str, dict[str, str]]]

CHANGES = ["POST", "PUT", "PATCH", "DELETE"]  # methods that change something
# Headers that describe one hop, not the content: never relayed.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "upgrade",
    "te",
    "trailer",
}
PASSED = ("accept", "content-type", "x-xsrftoken", "x-requested-with")  # from the caller


async def upstream(
    titan: Titan,
    connection: HTTPConnection,
    resource_id: str,
    authorization: str | None,
    ticket: str | None,
    find: Find,
) -> tuple[str, dict[str, str]]:
    """Where ``find`` says the request goes, for the caller its bearer token names (or a
    holder of ``ticket``)."""
    principal: Principal | None = None
    if authorization:
        client = connection.client.host if connection.client else ""
        principal = await titan.authenticate(authorization, client)
    return await asyncio.to_thread(find, resource_id, principal, ticket)


@dataclass(frozen=True)
class Door:
    """A family of relayed routes: who is let through and the cookie a ticket becomes."""

    find: Find
    cookie: str  # its name; scoped to ``path``
    path: str  # the resource's relayed path
    samesite: Literal["lax", "strict"]
    tickets_change: bool  # whether a ticket (or its cookie) may POST, PUT, PATCH, DELETE


async def relay_page(
    titan: Titan,
    request: Request,
    resource_id: str,
    path: str,
    authorization: str | None,
    door: Door,
) -> Response:
    """One HTTP request through ``door``: for a caller with a bearer token, or a ticket
    (the link's, which becomes the door's cookie, or that cookie); changes by ticket
    only where the door allows them."""
    given = request.query_params.get("ticket")
    ticket = given or request.cookies.get(door.cookie)
    if request.method in CHANGES and not door.tickets_change:
        if not authorization:
            raise Unauthenticated(
                f"{request.method} here needs 'Authorization: Bearer <token>' "
                "(a link's ticket only reads)"
            )
        ticket = None
    base, added = await upstream(titan, request, resource_id, authorization, ticket, door.find)
    response = await relay_request(titan.http, request, f"{base}/{path}", added, "ticket")
    if given:  # the link's ticket, kept for the page's own requests and sockets
        response.set_cookie(
            door.cookie, given, path=door.path, httponly=True, samesite=door.samesite
        )
    return response


async def relay_socket_of(websocket: WebSocket, resource_id: str, path: str, door: Door) -> None:
    """A WebSocket relayed through ``door``, for a caller with a bearer token or a ticket
    (in the query, or the cookie a first visit left); closed (1008) saying why for anyone
    else."""
    titan: Titan = websocket.app.state.titan
    ticket = websocket.query_params.get("ticket") or websocket.cookies.get(door.cookie)
    authorization = websocket.headers.get("authorization")
    try:
        base, added = await upstream(
            titan, websocket, resource_id, authorization, ticket, door.find
        )
    except TitanError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    await relay_socket(websocket, f"{base}/{path}", added, "ticket")


async def relay_request(
    http: httpx.AsyncClient,
    request: Request,
    url: str,
    added: dict[str, str],
    dropped_query: str,
) -> Response:
    """``request`` sent on to ``url`` (its query without ``dropped_query``, its body, a
    few content headers and ``added``); the answer as it came, but for hop-by-hop
    headers. Redirects are passed back, not followed."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != dropped_query]
    headers = {name: request.headers[name] for name in PASSED if name in request.headers}
    headers.setdefault("accept", "*/*")
    headers.update(added)
    upstream = await http.request(
        request.method,
        url,
        params=urlencode(query),
        headers=headers,
        content=await request.body() if request.method in CHANGES else None,
    )
    kept = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in HOP_BY_HOP]
    response = Response(upstream.content, status_code=upstream.status_code)
    for name, value in kept:
        response.headers.append(name, value)
    return response


async def relay_socket(
    websocket: WebSocket, url: str, added: dict[str, str], dropped_query: str
) -> None:
    """A WebSocket relayed both ways to ``url`` (``http``/``https`` made ``ws``/``wss``),
    with the caller's subprotocols and query (without ``dropped_query``) and ``added``."""
    query = urlencode(
        [(k, v) for k, v in websocket.query_params.multi_items() if k != dropped_query]
    )
    target = "ws" + url.removeprefix("http") + (f"?{query}" if query else "")
    protocols = websocket.scope.get("subprotocols") or None
    async with websockets.connect(
        target, subprotocols=protocols, max_size=None, additional_headers=added or None
    ) as remote:
        await websocket.accept(subprotocol=remote.subprotocol)

        async def inward() -> None:
            async for message in remote:
                if isinstance(message, str):
                    await websocket.send_text(message)
                else:
                    await websocket.send_bytes(message)

        async def outward() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await remote.send(message["text"])
                elif message.get("bytes") is not None:
                    await remote.send(message["bytes"])

        tasks = [asyncio.create_task(inward()), asyncio.create_task(outward())]
        with contextlib.suppress(WebSocketDisconnect, websockets.ConnectionClosed):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await websocket.close()
