"""Every mutating call is in the audit log, whoever made it and however it ended."""

from __future__ import annotations

from tests.integration.conftest import RunningServer


def test_mutating_calls_are_recorded_with_actor_and_result(server: RunningServer) -> None:
    bob = server.request("POST", "/api/v1/users", json={"name": "bob"}).json()["token"]
    assert (
        server.request("POST", "/api/v1/users", token=bob, json={"name": "eve"}).status_code == 403
    )
    bad = {"type": "job", "name": "Bad Name", "spec": {"command": "true"}}
    assert server.request("PUT", "/api/v1/recipes", token=bob, json=bad).status_code == 422
    server.request("POST", "/api/v1/secrets", token=bob, json={"name": "pw", "value": "hunter2"})
    assert server.request("GET", "/api/v1/resources", token=bob).status_code == 200  # a read
    assert server.request("DELETE", "/api/v1/secrets/pw", token="titan_forged").status_code == 401

    events = server.request("GET", "/api/v1/audit").json()
    seen = [(e["actor"], e["method"], e["path"], e["status"]) for e in reversed(events)]
    assert seen == [
        ("admin", "POST", "/api/v1/users", 201),
        ("bob", "POST", "/api/v1/users", 403),
        ("bob", "PUT", "/api/v1/recipes", 422),
        ("bob", "POST", "/api/v1/secrets", 201),
        ("-", "DELETE", "/api/v1/secrets/pw", 401),
    ]
    assert all(e["client"] == "127.0.0.1" and e["at"] for e in events)
    assert "hunter2" not in str(events)  # bodies are never recorded
    only_bob = server.request("GET", "/api/v1/audit", params={"actor": "bob"}).json()
    assert {e["actor"] for e in only_bob} == {"bob"} and len(only_bob) == 3


def test_a_plan_is_not_recorded_but_an_apply_is(server: RunningServer) -> None:
    recipe = {"type": "job", "name": "planned", "spec": {"command": "true"}}
    assert server.request("POST", "/api/v1/recipes/plan", json=recipe).status_code == 200
    assert server.request("GET", "/api/v1/audit").json() == []  # a dry run changes nothing
    assert server.request("PUT", "/api/v1/recipes", json=recipe).status_code in (200, 201)
    events = server.request("GET", "/api/v1/audit").json()
    assert [(e["method"], e["path"]) for e in events] == [("PUT", "/api/v1/recipes")]
