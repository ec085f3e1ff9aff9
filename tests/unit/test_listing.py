"""The listing's remembered pages: served again only while no resource or process changed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import update

from service.core.control.state import Target
from service.core.identity.access import Principal
from service.core.workloads.listing import ResourceListing
from service.database.models import Process, Resource
from tests.planes import Plane, plane


def _counting(p: Plane) -> list[Any]:
    """Calls of the service's page query from here on."""
    calls: list[Any] = []
    real = p.service.page

    def page(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    p.service.page = page  # type: ignore[method-assign]
    return calls


async def _names(listing: ResourceListing, who: Principal) -> dict[str, Any]:
    body, _ = await listing.page(who, None, None, 500, None)
    return {r["name"]: r for r in json.loads(body)}


def test_a_page_is_served_again_until_a_resource_or_process_changes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            listing = ResourceListing(p.service, p.service.sessions, seconds=600)
            p.apply({"type": "job", "name": "a", "spec": {"command": "x"}})
            p.target("job", "a", Target.STOPPED)
            await p.status("job", "a", "stopped")  # settled: the reconciler leaves it be
            await asyncio.sleep(0.3)
            calls = _counting(p)
            first = await _names(listing, p.admin)
            assert await _names(listing, p.admin) == first and len(calls) == 1
            # Another caller never gets this caller's page.
            other = Principal(p.admin.user_id, "admin", True, groups=frozenset({"x"}))
            await _names(listing, other)
            assert len(calls) == 2

            # A change through the service (the unit of work) is seen at once.
            p.target("job", "a", Target.RUNNING)
            assert (await _names(listing, p.admin))["a"]["target"] == "running"
            p.target("job", "a", Target.STOPPED)
            await p.status("job", "a", "stopped")
            await asyncio.sleep(0.3)

            # So is a bulk write to either table, and a rolled-back one changes nothing.
            before = len(calls)
            with p.service.sessions.begin() as session:
                session.execute(update(Resource).values(status_reason="bulk"))
            assert (await _names(listing, p.admin))["a"]["status_reason"] == "bulk"
            with p.service.sessions.begin() as session:
                session.execute(update(Process).values(node="elsewhere"))
            await _names(listing, p.admin)  # read again, though no process row was there
            assert len(calls) == before + 2
            session = p.service.sessions()
            session.execute(update(Resource).values(status_reason="never"))
            session.rollback()
            session.close()
            assert (await _names(listing, p.admin))["a"]["status_reason"] == "bulk"
            assert len(calls) == before + 2

    asyncio.run(scenario())


def test_a_remembered_page_expires(tmp_path: Path) -> None:
    """Changes made by another process (no event here) show within ``seconds``."""

    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            listing = ResourceListing(p.service, p.service.sessions, seconds=0.0)
            calls = _counting(p)
            await _names(listing, p.admin)
            await _names(listing, p.admin)
            assert len(calls) == 2
            # Callers asking at once for a page being read wait for that one read.
            pages = await asyncio.gather(*(_names(listing, p.admin) for _ in range(8)))
            assert len(calls) == 3 and all(page == pages[0] for page in pages)

    asyncio.run(scenario())
