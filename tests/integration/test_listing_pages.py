"""Listing is paginated: pages by owner, type and name, a Link to the next, cursors checked,
and the client (so the CLI) reads every page."""

from __future__ import annotations

import uuid

from service.core.control.state import Status, Target
from service.core.workloads.resources import PAGE_MOST
from service.database.db import make_engine, session_factory
from service.database.models import Resource
from tests.integration.conftest import RunningServer
from tests.integration.test_isolation import user

RECIPE = {"command": "true"}


def store_stopped(server: RunningServer, owner: str, count: int) -> None:
    """``count`` stopped jobs of ``owner`` written straight to the store (nothing starts)."""
    engine = make_engine(server.settings.sqlalchemy_url)
    try:
        with session_factory(engine).begin() as session:
            for i in range(count):
                session.add(
                    Resource(
                        id=uuid.uuid4().hex,
                        owner=owner,
                        type="job",
                        name=f"j{i:04d}",
                        recipe={"type": "job", "name": f"j{i:04d}", "owner": owner, "spec": RECIPE},
                        target=Target.STOPPED,
                        status=Status.STOPPED,
                    )
                )
    finally:
        engine.dispose()


def pages(server: RunningServer, token: str, query: str) -> list[list[str]]:
    """The names on each page, following the Link header from ``query``."""
    found: list[list[str]] = []
    path: str | None = "/api/v1/resources" + query
    while path is not None:
        answer = server.request("GET", path, token=token)
        assert answer.status_code == 200, answer.text
        found.append([f"{r['owner']}/{r['name']}" for r in answer.json()])
        following = answer.links.get("next")
        path = None if following is None else following["url"]
        assert path is None or path.startswith("/api/v1/resources?")  # relative: proxies
    return found


def test_pages_follow_one_another_and_show_only_what_the_caller_may_see(
    server: RunningServer,
) -> None:
    ann, bob = user(server, "ann"), user(server, "bob")
    store_stopped(server, "ann", 7)
    store_stopped(server, "bob", 2)

    seen = pages(server, ann, "?limit=3")
    assert [len(page) for page in seen] == [3, 3, 1]
    assert [name for page in seen for name in page] == [
        f"ann/j{i:04d}" for i in range(7)
    ]  # in order, none twice
    assert pages(server, bob, "?limit=3") == [["bob/j0000", "bob/j0001"]]

    everyone = [n for page in pages(server, server.token, "?limit=4&type=job") for n in page]
    assert everyone == sorted(everyone) and len(everyone) == 9
    assert pages(server, ann, "?limit=2&after=ann/job/j0004") == [["ann/j0005", "ann/j0006"]]


def test_bad_page_parameters_name_the_field(server: RunningServer) -> None:
    for query, field in (
        ("?limit=0", "limit"),
        (f"?limit={PAGE_MOST + 1}", "limit"),
        ("?after=nonsense", "after"),
        ("?after=a//b", "after"),
        ("?after=a/job/b%00", "NUL"),  # refused before any route
        ("?after=a/job/%0A", "after"),
        ("?after=" + "x" * 900, "after"),
    ):
        answer = server.request("GET", "/api/v1/resources" + query)
        assert answer.status_code == 422, (query, answer.status_code)
        assert field in answer.text, (query, answer.text)


def test_the_client_reads_every_page(server: RunningServer) -> None:
    me = server.request("GET", "/api/v1/users/me").json()["name"]
    store_stopped(server, me, PAGE_MOST + 20)
    first = server.request("GET", "/api/v1/resources")
    assert len(first.json()) == PAGE_MOST and "next" in first.links
    listed = server.hub().list()
    assert len(listed) == PAGE_MOST + 20
    assert len({r["name"] for r in listed}) == PAGE_MOST + 20
