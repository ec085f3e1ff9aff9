"""The audit log: every mutating API call, who made it, when, and how it ended.

``AuditLog`` is ASGI middleware: after each POST, PUT, PATCH or DELETE it
stores the caller (as authenticated for that request), the method, the path
(never the body or query, which may hold secrets), the response status and
the client address. Telemetry pushes are left out: they are a stream of
samples from Titan's own processes, not decisions (they are counted in
``/metrics``); so are recipe plans, dry runs that change nothing. Admins read
the log through ``GET /api/v1/audit``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from service.asgi import StatusWatch
from service.core.identity.access import Principal, require_admin
from service.database.models import AuditEvent, utcnow

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_AUDITED = frozenset({"/api/v1/telemetry", "/api/v1/recipes/plan"})
NOT_AUDITED_UNDER = "/deploy/"  # deployments' own traffic: the apps' business, not Titan's


def actor_of(principal: Principal | None) -> str:
    """How the log names a caller: the user, the user's resource token, or "-" (none)."""
    if principal is None:
        return "-"
    if principal.resource_id is not None:
        return f"{principal.user_name} (token of resource {principal.resource_id})"
    return principal.user_name


class AuditLog:
    """ASGI middleware recording each mutating call after it is answered."""

    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session]) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in MUTATING
            or scope["path"] in NOT_AUDITED
            or scope["path"].startswith(NOT_AUDITED_UNDER)
        ):
            await self.app(scope, receive, send)
            return
        watch = StatusWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            client = scope.get("client")
            event = AuditEvent(
                at=utcnow(),
                actor=actor_of(scope.get("state", {}).get("principal"))[:200],
                method=scope["method"],
                path=_storable(scope["path"])[:1000],
                status=watch.status,
                client=(client[0] if client else "")[:100],
            )
            try:
                await asyncio.to_thread(self._store, event)
            except Exception:  # the call itself is done; a lost audit row is logged loudly
                log.exception("could not store the audit event %s %s", event.method, event.path)

    def _store(self, event: AuditEvent) -> None:
        with self.sessions.begin() as session:
            session.add(event)


class AuditService:
    """Reading the audit log (admins)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def events(
        self,
        principal: Principal,
        actor: str | None,
        since: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Audit events, newest first, optionally of one actor (user name) or since a time."""
        require_admin(principal)
        query = select(AuditEvent)
        if actor is not None:
            query = query.where(
                (AuditEvent.actor == actor) | AuditEvent.actor.startswith(f"{actor} (")
            )
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        with self.sessions() as session:
            rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
            return [
                {
                    "at": row.at.isoformat(),
                    "actor": row.actor,
                    "method": row.method,
                    "path": row.path,
                    "status": row.status,
                    "client": row.client,
                }
                for row in rows
            ]


def _storable(text: str) -> str:
    """``text`` as every store keeps it: NUL and lone surrogates (a hostile URL's) escaped."""
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
