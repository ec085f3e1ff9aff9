"""The resource listing's pages as JSON, remembered until a resource or process changes.

The listing is the API's hottest read, and what it shows changes far less often than it
is read. A page is remembered per caller (who they are, their groups) and query, and
forgotten as soon as any session of this control plane commits a change to a resource or
a process (``after_commit``, so a page is never remembered from before a change it
missed). Changes written to the database by anything else (another process) show within
``seconds``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from service.core.identity.access import Principal
from service.core.workloads.resources import ResourceService
from service.database.models import Process, Resource

WATCHED = (Resource, Process)
Page = tuple[bytes, str | None]  # the page as JSON, and the cursor of the next one
_TABLES = {model.__tablename__ for model in WATCHED}


class ResourceListing:
    """Pages of ``ResourceService.page`` as JSON bytes, remembered (see the module)."""

    def __init__(
        self,
        resources: ResourceService,
        sessions: sessionmaker[Session],
        seconds: float = 2.0,
        size: int = 2048,
    ) -> None:
        self.resources = resources
        self.seconds = seconds
        self.size = size
        self.version = 0  # bumped after every commit that changed a resource or process
        self._pages: OrderedDict[tuple[Any, ...], tuple[int, float, bytes, str | None]] = (
            OrderedDict()
        )
        self._reading: dict[tuple[Any, ...], tuple[int, asyncio.Future[Page]]] = {}
        event.listen(sessions, "after_flush", _flushed)
        event.listen(sessions, "do_orm_execute", _executed)
        event.listen(sessions, "after_commit", self._committed)
        event.listen(sessions, "after_rollback", _rolled_back)

    async def page(
        self,
        principal: Principal,
        type: str | None,
        owner: str | None,
        limit: int,
        after: str | None,
    ) -> Page:
        """The page as JSON and the cursor of the next one (None: the last page)."""
        query = (type, owner, limit, after)
        who = (principal.user_id, principal.is_admin, principal.resource_id, principal.groups)
        key = (*who, *query)
        now = time.monotonic()
        known = self._pages.get(key)
        if known is not None and known[0] == self.version and known[1] > now:
            return known[2], known[3]
        running = self._reading.get(key)
        if running is not None and running[0] == self.version:
            return await asyncio.shield(running[1])  # one read a page at a time, not one each
        version = self.version  # read before the query: a change after it forgets the page
        reading = asyncio.ensure_future(asyncio.to_thread(self._read, principal, query))
        self._reading[key] = (version, reading)
        try:
            body, following = await asyncio.shield(reading)
        finally:
            if self._reading.get(key, (0, None))[1] is reading:
                del self._reading[key]
        self._pages[key] = (version, now + self.seconds, body, following)
        self._pages.move_to_end(key)
        while len(self._pages) > self.size:
            self._pages.popitem(last=False)
        return body, following

    def _read(
        self, principal: Principal, query: tuple[str | None, str | None, int, str | None]
    ) -> Page:
        """The page from the store, encoded (in a worker thread: neither blocks the loop)."""
        views, following = self.resources.page(principal, *query)
        body = json.dumps(views, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return body.encode(), following

    def _committed(self, session: Session) -> None:
        if session.info.pop("resources_changed", False):
            self.version += 1


def _flushed(session: Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, WATCHED) for obj in changed):
        session.info["resources_changed"] = True


def _executed(state: ORMExecuteState) -> None:
    """Statements that write without the unit of work (``session.execute(update(...))``);
    one whose table is not known counts as a change."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _TABLES or table is None:
        state.session.info["resources_changed"] = True


def _rolled_back(session: Session) -> None:
    session.info.pop("resources_changed", None)
