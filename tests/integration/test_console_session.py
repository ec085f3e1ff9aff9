"""The console's session: what the cookie is, what it can do, and what a page elsewhere
cannot do with it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.core.identity.auth import issue_token
from service.database.db import make_engine, session_factory
from service.database.models import Resource, User
from tests.console_client import Console
from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.slow
PARKED = {"type": "job", "name": "j", "spec": {"command": "sleep 300"}}


def _cookie_header(answer: httpx.Response) -> str:
    return answer.headers.get("set-cookie", "")


def test_sign_in_makes_an_httponly_strict_session_of_its_own(server: RunningServer) -> None:
    answer = httpx.post(
        server.url + "/sign-in",
        data={"token": server.token, "next": "/new"},
        headers={"Origin": server.url},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/new"
    cookie = _cookie_header(answer)
    assert cookie.startswith("titan_session=titan_")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    secret = cookie.split(";")[0].split("=", 1)[1]
    assert secret != server.token  # the typed token never goes to the browser
    tokens = server.request("GET", "/api/v1/tokens").json()
    session = [t for t in tokens if t["name"] == "console session"]
    assert len(session) == 1 and session[0]["expires_at"] is not None


@pytest.mark.parametrize("token", ["", "titan_wrong", "not even a token"])
def test_a_wrong_token_signs_nobody_in(server: RunningServer, token: str) -> None:
    answer = httpx.post(server.url + "/sign-in", data={"token": token})
    assert answer.status_code == 401
    assert 'role="alert"' in answer.text and "titan_session" not in _cookie_header(answer)


def test_a_resource_token_cannot_sign_in(server: RunningServer) -> None:
    server.request("PUT", "/api/v1/recipes", json=PARKED)
    engine = make_engine(server.settings.sqlalchemy_url)
    try:
        with session_factory(engine).begin() as session:
            admin = session.scalars(select(User).where(User.name == "admin")).one()
            job = session.scalars(select(Resource).where(Resource.name == "j")).one()
            token = issue_token(session, admin, "held by a process", job.id)
    finally:
        engine.dispose()
    refused = httpx.post(server.url + "/sign-in", data={"token": token})
    assert refused.status_code == 400 and "resource token" in refused.text
    assert "titan_session" not in _cookie_header(refused)


def test_sign_out_revokes_the_session(server: RunningServer) -> None:
    console = Console(server.url, server.token)
    try:
        assert console.get("/").status_code == 200
        cookie = console.http.cookies["titan_session"]
        assert console.post("/sign-out").status_code == 303
        assert "titan_session" not in console.http.cookies
        # The old cookie, kept by someone, is dead too: pages and the API refuse it.
        again = httpx.get(server.url + "/", cookies={"titan_session": cookie})
        assert again.status_code == 303 and again.headers["location"].startswith("/sign-in")
        api = httpx.get(server.url + "/api/v1/users/me", cookies={"titan_session": cookie})
        assert api.status_code == 401
        names = [t["name"] for t in server.request("GET", "/api/v1/tokens").json()]
        assert "console session" not in names
    finally:
        console.close()


def test_changes_need_the_csrf_token_and_this_origin(server: RunningServer) -> None:
    server.request("PUT", "/api/v1/recipes", json=PARKED)
    console = Console(server.url, server.token)

    def target() -> Any:
        return server.request("GET", "/api/v1/resources/job/j").json()["target"]

    try:
        stop = "/resources/job/j/stop"
        refusals = [
            console.post(stop, csrf=False),  # a form made elsewhere cannot know the token
            console.post(stop, {"csrf": "0" * 64}, csrf=False),
            console.post(stop, Origin="http://127.0.0.1:1"),  # same site, other origin
            console.post(stop, **{"Sec-Fetch-Site": "same-site"}),
            console.post(stop, **{"Sec-Fetch-Site": "cross-site"}),
        ]
        assert [r.status_code for r in refusals] == [403] * 5
        assert all('role="alert"' in r.text for r in refusals)
        assert target() == "running"  # nothing changed
        done = console.post(stop, {"back": "/"})
        assert done.status_code == 303 and done.headers["location"] == "/"
        assert target() == "stopped"
    finally:
        console.close()


def test_the_cookie_reads_the_api_but_never_changes_it(server: RunningServer) -> None:
    console = Console(server.url, server.token)
    try:
        me = console.http.get("/api/v1/users/me")
        assert me.status_code == 200 and me.json()["name"] == "admin"
        put = console.http.put(
            "/api/v1/recipes",
            json=PARKED,
            headers={"Origin": server.url, "X-CSRF-Token": console.csrf},
        )
        assert put.status_code == 401
        assert server.request("GET", "/api/v1/resources").json() == []
    finally:
        console.close()


@pytest.mark.parametrize(
    ("next", "lands"),
    [
        ("/new", "/new"),
        ("//elsewhere.example/x", "/"),
        ("https://elsewhere.example", "/"),
        ("/\\elsewhere.example", "/"),
    ],
)
def test_sign_in_goes_on_only_to_this_site(server: RunningServer, next: str, lands: str) -> None:
    answer = httpx.post(server.url + "/sign-in", data={"token": server.token, "next": next})
    assert answer.status_code == 303 and answer.headers["location"] == lands


def test_pages_forbid_framing_and_foreign_scripts(server: RunningServer) -> None:
    console = Console(server.url, server.token)
    try:
        page = console.get("/")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["cache-control"] == "no-store"
    finally:
        console.close()


def test_pages_and_what_they_load_stay_under_200_kb(server: RunningServer) -> None:
    server.request("PUT", "/api/v1/recipes", json=PARKED)
    console = Console(server.url, server.token)
    try:
        for path in ("/", "/new", "/resources/job/j"):
            page = console.get(path)
            assert page.status_code == 200, path
            assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
            sizes = [len(console.http.get(a).content) for a in assets]
            assert all(size > 0 for size in sizes), assets
            total = len(page.content) + sum(sizes)
            assert total < 200_000, f"{path}: {total} bytes with {assets}"
    finally:
        console.close()


def test_a_session_outlives_a_restart(start_server: Any) -> None:
    first = start_server()
    console = Console(first.url, first.token)
    cookie = console.http.cookies["titan_session"]
    console.close()
    first.stop()
    second = start_server()
    page = httpx.get(second.url + "/", cookies={"titan_session": cookie})
    assert page.status_code == 200 and "Resources" in page.text


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "job", "name": "x", "spec": {"command": "true", "retries": 1' + "0" * 5000 + "}}",
        '{"type": "job", "name": "\\ud800", "spec": {}}',
        '{"type": "job", "name": "a\\u0000b", "spec": {}}',
        '{"type": "job", "name": "a\x07b", "spec": {}}',
        "type: job\nname: x",
        "",
    ],
)
def test_hostile_recipes_get_problems_not_errors(server: RunningServer, text: str) -> None:
    console = Console(server.url, server.token)
    try:
        checked = console.post("/new/check", {"recipe": text})
        assert checked.status_code == 200 and 'id="problems"' in checked.text, checked.text
        applied = console.post("/new", {"recipe": text})
        assert applied.status_code in (400, 413, 415, 422) and 'role="alert"' in applied.text
        assert server.request("GET", "/api/v1/resources").json() == []
    finally:
        console.close()


def test_what_users_wrote_is_shown_as_text_never_run(server: RunningServer) -> None:
    hostile = "<script>window.pwned=1</script><img src=x onerror=alert(1)>"
    job = {"type": "job", "name": "x", "spec": {"command": ["echo", hostile]}}
    server.request("PUT", "/api/v1/recipes", json=job)
    console = Console(server.url, server.token)
    try:
        bad = console.post("/new", {"recipe": '{"type": "job", "name": "' + hostile + '"}'})
        for page in (console.get("/resources/job/x").text, bad.text):
            assert "<script>window.pwned" not in page and "<img src=x" not in page
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in console.get("/resources/job/x").text
    finally:
        console.close()


def test_a_form_value_of_the_wrong_kind_gets_a_page_naming_the_field(
    server: RunningServer,
) -> None:
    server.request("PUT", "/api/v1/recipes", json={**PARKED, "type": "cluster", "spec": {}})
    console = Console(server.url, server.token)
    try:
        answer = console.post("/resources/cluster/j/scale", {"workers": "many"})
        assert answer.status_code == 422
        assert answer.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in answer.text and "workers" in answer.text
    finally:
        console.close()
