"""The alerts page (admins): alert events, the rules that raise them, and the resources
stopped for being idle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.session import SignedIn
from service.core.identity.access import require_admin

router = APIRouter(include_in_schema=False)
EVENTS_SHOWN = 200


@router.get("/admin/alerts")
def alerts_page(
    request: Request,
    titan: TitanDep,
    principal: SignedIn,
    state: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """Alert events, newest first (optionally only firing or resolved ones), every rule,
    and the idle reclaims with the GPU time they gave back."""
    require_admin(principal)
    monitor = titan.monitor
    return render(
        request,
        "alerts.html",
        principal,
        "Alerts",
        events=monitor.events(principal, state or None, EVENTS_SHOWN),
        rules=monitor.rules(principal),
        reclaims=monitor.reclaims(principal),
        state=state,
    )
