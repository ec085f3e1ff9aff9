"""The audit page (admins): the latest changes made through Titan, who made them and how
they ended, optionally of one user or since a time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.session import SignedIn
from service.core.identity.access import require_admin
from service.times import time_param

router = APIRouter(include_in_schema=False)


def _since(text: str) -> datetime | None:
    """The time in ``text`` (ISO 8601, epoch, or back from now such as 1h, as the logs and
    telemetry take it); None for an empty field."""
    at = time_param("since", text or None, time.time())
    return None if at is None else datetime.fromtimestamp(at, UTC)


@router.get("/admin/audit")
def audit_page(
    request: Request,
    titan: TitanDep,
    principal: SignedIn,
    actor: Annotated[str, Query(max_length=63)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    """The newest audit events (as ``GET /api/v1/audit`` filters them)."""
    require_admin(principal)
    events = titan.audit.events(principal, actor.strip() or None, _since(since), limit)
    return render(
        request,
        "audit.html",
        principal,
        "Audit",
        events=events,
        filters={"actor": actor, "since": since, "limit": limit},
    )
