"""Relaying HTTP requests and WebSockets to a process behind the control plane.

The one front door: a cluster's dashboard (``/dashboards/<id>/``) and a
workspace's JupyterLab (``/jupyter/<id>/``) listen only where the control
plane reaches them (loopback, a resource's network, a Slurm node's address);
their routes check who asks, then relay here. Hop-by-hop headers never pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlencode

import httpx
import websockets
from fastapi import Request, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketDisconnect

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
