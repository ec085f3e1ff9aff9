"""The nodes page: each machine's capacity and allocation, and each GPU with who holds it
and its newest reading (utilisation, temperature, memory) where one was sent."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.session import SignedIn
from service.core.capacity.ledger import node_report
from service.core.identity.access import Principal, may_see, require_user
from service.services import Titan

router = APIRouter(include_in_schema=False)
GPU_SOURCE = "gpu:"


def gpu_readings(titan: Titan, principal: Principal) -> dict[str, dict[str, float]]:
    """The newest values of each GPU (by UUID) that a resource the user may see reported."""
    readings: dict[str, dict[str, float]] = {}
    for resource in titan.monitor.current(principal):
        for reading in resource["sources"]:
            if reading["source"].startswith(GPU_SOURCE):
                readings[reading["source"].removeprefix(GPU_SOURCE)] = reading["values"]
    return readings


def holders(principal: Principal, holder: str | None) -> list[dict[str, Any]]:
    """Who holds a GPU (``owner/type/name``, comma-separated when shared), each with the
    page of the resource where the user may see it."""
    found = []
    for key in dict.fromkeys((holder or "").split(", ")):  # once each, in order
        owner, _, type_and_name = key.partition("/")
        if type_and_name:
            shown = may_see(principal, owner)
            page = f"/resources/{type_and_name}?owner={quote(owner)}" if shown else None
            found.append({"key": key, "page": page})
    return found


@router.get("/nodes")
def nodes_page(request: Request, titan: TitanDep, principal: SignedIn) -> Response:
    """Every node (as ``GET /api/v1/nodes`` shows it) with its GPUs' holders and readings."""
    require_user(principal)
    with titan.resources.sessions() as session:
        nodes = node_report(session, titan.resources.overcommit)
    readings = gpu_readings(titan, principal)
    for node in nodes:
        for gpu in node["gpus"]:
            gpu["holders"] = holders(principal, gpu["holder"])
            gpu["reading"] = readings.get(gpu["uuid"])
    return render(request, "nodes.html", principal, "Nodes", nodes=nodes)
