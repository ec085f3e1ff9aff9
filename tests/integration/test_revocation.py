"""Revoking tokens, expiring them, disabling and deleting users: each takes effect at once.

Servers here remember valid tokens for a minute, so every check also proves
that revocation empties that memory. They run the fake backend: resources
of non-admins run (no OS accounts to map) and no process is started.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.core.identity.auth import issue_token
from service.database.db import make_engine, session_factory
from service.database.models import Resource, User
from tests.integration.conftest import RunningServer, fake_backend_server

JOB: dict[str, Any] = {"type": "job", "spec": {"command": "sleep 600"}}  # runs until stopped
ME = "/api/v1/users/me"


@pytest.fixture
def cached(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    """A server that remembers valid tokens for a minute, on SQLite and on PostgreSQL."""
    with fake_backend_server(tmp_path / "data", database_url, token_cache_seconds=60) as server:
        yield server


def _user(server: RunningServer, name: str) -> str:
    answer = server.request("POST", "/api/v1/users", json={"name": name})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def _message(answer: Any) -> str:
    return str(answer.json()["error"]["message"])


def test_a_revoked_token_is_refused_at_once(cached: RunningServer) -> None:
    olive = _user(cached, "olive")
    made = cached.request("POST", "/api/v1/tokens", token=olive, json={"name": "laptop"}).json()
    laptop = made["token"]
    assert cached.request("GET", ME, token=laptop).status_code == 200  # now remembered
    listed = cached.request("GET", "/api/v1/tokens", token=olive).json()
    assert [t["name"] for t in listed] == ["laptop", "first token"]
    assert listed[0]["id"] == made["id"] and listed[0]["last_used_at"] is not None
    assert laptop not in str(listed) and "hash" not in str(listed)

    oscar = _user(cached, "oscar")
    path = f"/api/v1/tokens/{made['id']}"
    assert cached.request("DELETE", path, token=oscar).status_code == 404  # not his to see
    assert cached.request("GET", ME, token=laptop).status_code == 200
    assert cached.request("DELETE", path, token=olive).status_code == 204
    refused = cached.request("GET", ME, token=laptop)
    assert refused.status_code == 401 and "not valid" in _message(refused)
    assert cached.request("DELETE", path, token=olive).status_code == 404  # gone
    assert cached.request("GET", ME, token=olive).status_code == 200  # her other token lives
    first = f"/api/v1/tokens/{listed[1]['id']}"
    in_use = cached.request("DELETE", first, token=olive)  # would lock her out
    assert in_use.status_code == 409 and "made with" in _message(in_use)

    # Admins revoke anyone's, and list anyone's; others may not list another's.
    (first,) = cached.request("GET", "/api/v1/tokens", params={"user": "oscar"}).json()
    assert cached.request("GET", ME, token=oscar).status_code == 200
    assert cached.request("DELETE", f"/api/v1/tokens/{first['id']}").status_code == 204
    assert cached.request("GET", ME, token=oscar).status_code == 401
    denied = cached.request("GET", "/api/v1/tokens", token=olive, params={"user": "admin"})
    assert denied.status_code == 403


def test_an_expired_token_is_refused_even_when_remembered(cached: RunningServer) -> None:
    body = {"name": "short", "expires_in": 2}
    made = cached.request("POST", "/api/v1/tokens", json=body).json()
    assert made["expires_at"] is not None
    assert cached.request("GET", ME, token=made["token"]).status_code == 200
    time.sleep(2.2)
    refused = cached.request("GET", ME, token=made["token"])
    assert refused.status_code == 401 and "expired" in _message(refused)
    (short,) = [t for t in cached.request("GET", "/api/v1/tokens").json() if t["id"] == made["id"]]
    assert short["expired"] is True
    never = cached.request("POST", "/api/v1/tokens", json={"expires_in": 0})
    assert never.status_code == 422 and "expires_in" in _message(never)


def _resource_tokens(server: RunningServer) -> dict[str, str]:
    """Resource tokens of olive's own job and of the group job she applied."""
    engine = make_engine(server.settings.sqlalchemy_url)
    try:
        with session_factory(engine).begin() as session:
            olive = session.scalars(select(User).where(User.name == "olive")).one()
            found = {}
            for owner in ("olive", "team"):
                job = session.scalars(select(Resource).where(Resource.owner == owner)).one()
                found[owner] = issue_token(session, olive, "process:main", job.id)
            return found
    finally:
        engine.dispose()


def _creators(server: RunningServer) -> dict[str, str]:
    engine = make_engine(server.settings.sqlalchemy_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(select(Resource.name, Resource.created_by)).tuples()
            return dict(rows.all())
    finally:
        engine.dispose()


def test_a_disabled_user_is_refused_at_once_and_their_resources_stop(
    cached: RunningServer,
) -> None:
    olive = _user(cached, "olive")
    cached.request("POST", "/api/v1/groups", json={"name": "team", "admins": ["olive"]})
    assert cached.request("GET", ME, token=olive).status_code == 200  # remembered
    own = {**JOB, "name": "mine"}
    assert cached.request("PUT", "/api/v1/recipes", token=olive, json=own).status_code == 201
    shared = {**JOB, "name": "shared", "owner": "team"}
    assert cached.request("PUT", "/api/v1/recipes", token=olive, json=shared).status_code == 201
    _wait_status(cached, "/api/v1/resources/job/mine?owner=olive", "running")
    resource_tokens = _resource_tokens(cached)

    disabled = cached.request("POST", "/api/v1/users/olive/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True and disabled.json()["stopped"] == ["olive/job/mine"]
    refused = cached.request("GET", ME, token=olive)
    assert refused.status_code == 401 and "disabled" in _message(refused)
    mine = "/api/v1/resources/job/mine?owner=olive"
    assert cached.request("GET", mine, token=resource_tokens["olive"]).status_code == 401
    # The group's job goes on, and its process's token acts for it still.
    team = "/api/v1/resources/job/shared?owner=team"
    assert cached.request("GET", team, token=resource_tokens["team"]).status_code == 200
    assert cached.request("GET", team).json()["target"] == "running"
    assert cached.request("GET", mine).json()["target"] == "stopped"
    _wait_status(cached, mine, "stopped")
    assert any("'olive' was disabled" in e["reason"] for e in _history(cached, mine))
    made = cached.request("POST", "/api/v1/tokens", json={"user": "olive"})
    assert made.status_code == 409 and "disabled" in _message(made)
    users = {u["name"]: u for u in cached.request("GET", "/api/v1/users").json()}
    assert users["olive"]["disabled"] is True
    start = cached.request("POST", "/api/v1/resources/job/mine/start?owner=olive")
    assert start.status_code == 409 and "disabled" in _message(start)  # not even by an admin

    assert cached.request("POST", "/api/v1/users/olive/enable").status_code == 200
    assert cached.request("GET", ME, token=olive).status_code == 200
    assert cached.request("GET", mine).json()["target"] == "stopped"  # until started


def _history(server: RunningServer, path: str) -> list[dict[str, Any]]:
    base, _, query = path.partition("?")
    return list(server.request("GET", f"{base}/history?{query}").json())


def _wait_status(server: RunningServer, path: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while server.request("GET", path).json()["status"] != status:
        assert time.monotonic() < deadline, server.request("GET", path).text
        time.sleep(0.1)


def test_admins_cannot_lock_themselves_out(cached: RunningServer) -> None:
    for answer in (
        cached.request("POST", "/api/v1/users/admin/disable"),
        cached.request("DELETE", "/api/v1/users/admin"),
    ):
        assert answer.status_code == 409 and "yourself" in _message(answer)
    ada = cached.request("POST", "/api/v1/users", json={"name": "ada", "is_admin": True})
    ada_token = ada.json()["token"]
    assert cached.request("POST", "/api/v1/users/admin/disable", token=ada_token).status_code == 200
    assert cached.request("GET", ME).status_code == 401  # the first admin, remembered before
    assert cached.request("DELETE", "/api/v1/users/ada", token=ada_token).status_code == 409
    assert cached.request("GET", "/api/v1/users/nobody", token=ada_token).status_code in (404, 405)
    missing = cached.request("POST", "/api/v1/users/nobody/disable", token=ada_token)
    assert missing.status_code == 404 and "nobody" in _message(missing)


def test_deleting_a_user_hands_over_what_they_own_or_is_refused(cached: RunningServer) -> None:
    olive = _user(cached, "olive")
    _user(cached, "bob")
    cached.request("POST", "/api/v1/groups", json={"name": "team", "admins": ["olive"]})
    own = {**JOB, "name": "mine"}
    assert cached.request("PUT", "/api/v1/recipes", token=olive, json=own).status_code == 201
    shared = {**JOB, "name": "shared", "owner": "team"}
    assert cached.request("PUT", "/api/v1/recipes", token=olive, json=shared).status_code == 201
    resource_tokens = _resource_tokens(cached)
    secret = {"name": "pw", "value": "hunter2"}
    assert cached.request("POST", "/api/v1/secrets", token=olive, json=secret).status_code == 201
    folder = cached.request("POST", "/api/v1/folders", token=olive, json={"name": "data"})
    assert folder.status_code == 201
    (cached.settings.folders_dir / "olive" / "data" / "f.txt").write_text("kept")

    refused = cached.request("DELETE", "/api/v1/users/olive")
    assert refused.status_code == 409
    assert "1 resource, 1 secret, 1 folder" in _message(refused)
    assert "transfer_to" in _message(refused)
    clash = cached.request("POST", "/api/v1/secrets", token=None, json=secret)  # admin's own pw
    assert clash.status_code == 201
    clashed = cached.request("DELETE", "/api/v1/users/olive", params={"transfer_to": "admin"})
    assert clashed.status_code == 409 and "secret pw" in _message(clashed)
    unknown = cached.request("DELETE", "/api/v1/users/olive", params={"transfer_to": "zed"})
    assert unknown.status_code == 422 and "transfer_to" in _message(unknown)

    deleted = cached.request("DELETE", "/api/v1/users/olive", params={"transfer_to": "bob"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "deleted": "olive",
        "transferred_to": "bob",
        "resources": 1,
        "secrets": 1,
        "images": 0,
        "folders": 1,
    }
    assert cached.request("GET", ME, token=olive).status_code == 401
    assert cached.request("GET", ME, token=resource_tokens["olive"]).status_code == 401
    # The group's job she applied runs on; its process's token now belongs to bob.
    team = "/api/v1/resources/job/shared?owner=team"
    assert cached.request("GET", team, token=resource_tokens["team"]).status_code == 200
    assert cached.request("GET", team).json()["target"] == "running"
    assert _creators(cached) == {"mine": "bob", "shared": "bob"}
    handed = "/api/v1/resources/job/mine?owner=bob"
    assert cached.request("GET", handed).json()["target"] == "stopped"
    _wait_status(cached, handed, "stopped")
    assert any("handed from 'olive'" in e["reason"] for e in _history(cached, handed))
    moved = cached.settings.folders_dir / "bob" / "data" / "f.txt"
    assert moved.read_text() == "kept"
    assert "olive" not in {u["name"] for u in cached.request("GET", "/api/v1/users").json()}
    # A new user of the same name inherits nothing.
    again = _user(cached, "olive")
    assert cached.request("GET", "/api/v1/secrets", token=again).json() == []
    assert cached.request("GET", "/api/v1/resources", token=again).json() == []
    assert cached.request("DELETE", "/api/v1/users/olive").status_code == 200
