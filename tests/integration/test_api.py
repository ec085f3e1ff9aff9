"""The HTTP API of a real server: auth, bad input, apply semantics, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from typing import Any

from sqlalchemy import create_engine, text

from tests.integration.conftest import RunningServer, ServerFactory

JOB = {"type": "job", "name": "hello", "spec": {"command": "echo hello"}}
CLUSTER = {"type": "cluster", "name": "c", "spec": {"n_workers": 0}}


def apply(server: RunningServer, recipe: Any, token: str | None = None) -> Any:
    return server.request("PUT", "/api/v1/recipes", token=token, json=recipe)


def make_user(server: RunningServer, name: str, admin: bool = False) -> str:
    answer = server.request("POST", "/api/v1/users", json={"name": name, "is_admin": admin})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    assert "Traceback" not in response.text
    return dict(body["error"])


def test_first_start_writes_a_private_admin_token(server: RunningServer) -> None:
    path = server.settings.admin_token_file
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    me = server.request("GET", "/api/v1/users/me").json()
    assert me == {
        "name": "admin",
        "is_admin": True,
        "resource_id": None,
        "groups": [],
        "group_admin_of": [],
    }


def test_tokens_are_stored_hashed(server: RunningServer) -> None:
    secret = make_user(server, "alice")
    engine = create_engine(server.settings.sqlalchemy_url)
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(text("select token_hash from tokens"))]
    engine.dispose()
    assert secret not in stored and server.token not in stored
    assert all(len(h) == 64 for h in stored)


def test_users_see_and_change_only_their_own(server: RunningServer) -> None:
    alice, bob = make_user(server, "alice"), make_user(server, "bob")
    assert apply(server, JOB, alice).status_code == 201
    assert apply(server, JOB, bob).status_code == 201  # same name, other owner: fine
    mine = server.request("GET", "/api/v1/resources", token=alice).json()
    assert [(r["owner"], r["name"]) for r in mine] == [("alice", "hello")]
    other = "/api/v1/resources/job/hello?owner=bob"
    assert server.request("GET", other, token=alice).status_code == 404
    assert server.request("POST", other.replace("?", "/stop?"), token=alice).status_code == 404
    assert server.request("DELETE", other, token=alice).status_code == 404
    assert server.request("GET", other).status_code == 200  # admin sees all
    everyone = server.request("GET", "/api/v1/resources").json()
    assert {r["owner"] for r in everyone} == {"alice", "bob"}
    forged = apply(server, {**JOB, "owner": "bob"}, alice)
    assert forged.status_code == 403 and "owner" in error(forged)["message"]
    assert (
        server.request("POST", "/api/v1/users", token=alice, json={"name": "eve"}).status_code
        == 403
    )
    tokens = server.request("POST", "/api/v1/tokens", token=alice, json={"user": "bob"})
    assert tokens.status_code == 403
    own = server.request("POST", "/api/v1/tokens", token=alice, json={"name": "laptop"})
    assert own.status_code == 201
    assert (
        server.request("GET", "/api/v1/users/me", token=own.json()["token"]).json()["name"]
        == "alice"
    )


def test_admin_may_apply_for_another_owner(server: RunningServer) -> None:
    make_user(server, "carol")
    answer = apply(server, {**JOB, "owner": "carol"})
    assert answer.status_code == 201 and answer.json()["resource"]["owner"] == "carol"
    missing = apply(server, {**JOB, "owner": "nobody"})
    assert missing.status_code == 422 and "nobody" in error(missing)["message"]


def test_bad_bodies_get_clear_4xx(server: RunningServer) -> None:
    path = "/api/v1/recipes"
    malformed = server.request(
        "PUT", path, content=b'{"type": "job",', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and "not valid JSON" in error(malformed)["message"]
    assert "line 1 column 16" in error(malformed)["message"]
    yaml_body = server.request(
        "PUT", path, content=b"type: job\nname: x\n", headers={"Content-Type": "application/json"}
    )
    assert yaml_body.status_code == 400
    assert "recipes are JSON (this looks like YAML)" in error(yaml_body)["message"]
    binary = server.request(
        "PUT", path, content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert binary.status_code == 400
    wrong_type = server.request(
        "PUT", path, content=b"type: job", headers={"Content-Type": "text/yaml"}
    )
    assert wrong_type.status_code == 415 and "application/json" in error(wrong_type)["message"]
    assert "this looks like YAML" in error(wrong_type)["message"]
    huge = json.dumps({**JOB, "description": "x" * (server.settings.max_body_bytes + 10)})
    too_big = server.request(
        "PUT", path, content=huge.encode(), headers={"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413 and "TITAN_MAX_BODY_BYTES" in error(too_big)["message"]
    assert apply(server, [1, 2]).status_code == 422

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        yield b'{"type": "job", "name": "big", "description": "'
        for _ in range(server.settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    streamed = server.request(
        "PUT", path, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    deep = server.request(
        "PUT",
        path,
        content=b"[" * 200_000 + b"]" * 200_000,
        headers={"Content-Type": "application/json"},
    )
    assert deep.status_code == 400 and "deeply" in error(deep)["message"]
    nan = server.request(
        "PUT",
        path,
        headers={"Content-Type": "application/json"},
        content=b'{"type": "cluster", "name": "n", "spec": {"resources": {"cpu": NaN}}}',
    )
    assert nan.status_code == 422
    assert server.request("GET", "/api/v1/resources/job/x/logs?tail=-5").status_code == 422
    assert server.request("GET", "/api/v1/nothing-here").status_code == 404
    assert server.request("PATCH", "/api/v1/recipes").status_code == 405
    assert server.request("GET", "/api/v1/resources").json() == []  # nothing half-created


def test_invalid_recipes_list_every_problem_and_create_nothing(server: RunningServer) -> None:
    recipe = {
        "type": "cluster",
        "name": "Bad/Name",
        "spec": {"n_workers": -1, "nworkers": 2, "resources": {"memory": "9000TiB"}},
    }
    answer = apply(server, recipe)
    assert answer.status_code == 422
    problems = {p["path"]: p for p in error(answer)["details"]}
    assert set(problems) == {"name", "spec.n_workers", "spec.nworkers", "spec.resources.memory"}
    assert problems["spec.n_workers"]["value"] == -1
    assert problems["name"]["value"] == "Bad/Name"
    for name in ["a/b", "caf\u00e9", "x\u202eexe", "-x", "a" * 70]:
        assert apply(server, {**JOB, "name": name}).status_code == 422
    assert server.request("POST", "/api/v1/recipes/plan", json=recipe).status_code == 422
    assert server.request("GET", "/api/v1/resources").json() == []


def test_apply_plan_and_read_back(server: RunningServer) -> None:
    planned = server.request("POST", "/api/v1/recipes/plan", json=CLUSTER).json()
    assert planned["action"] == "create" and planned["processes"]["start"] == ["scheduler"]
    assert server.request("GET", "/api/v1/resources").json() == []  # plan applied nothing
    created = apply(server, CLUSTER)
    assert created.status_code == 201 and created.json()["action"] == "created"
    again = apply(server, CLUSTER)
    assert again.status_code == 200 and again.json()["action"] == "unchanged"
    recipe = server.request("GET", "/api/v1/resources/cluster/c/recipe").json()
    assert recipe["owner"] == "admin" and recipe["spec"]["n_workers"] == 0
    assert apply(server, recipe).json()["action"] == "unchanged"
    bigger = {**CLUSTER, "spec": {"n_workers": 2}}
    change = server.request("POST", "/api/v1/recipes/plan", json=bigger).json()
    assert change["action"] == "update"
    assert change["changes"] == [{"path": "spec.n_workers", "old": 0, "new": 2}]
    assert change["processes"]["start"] == ["worker-0", "worker-1"]
    assert change["processes"]["restart"] == []
    updated = apply(server, bigger).json()
    assert updated["action"] == "updated" and updated["resource"]["generation"] == 2


def test_openapi_docs_are_served(server: RunningServer) -> None:
    spec = server.request("GET", "/openapi.json", token="").json()
    assert (
        "/api/v1/recipes" in spec["paths"]
        and "/api/v1/resources/{type}/{name}/logs" in spec["paths"]
    )
    assert server.request("GET", "/docs", token="").status_code == 200


def test_the_store_works_on_sqlite_and_postgresql(
    database_url: str, start_server: ServerFactory
) -> None:
    # database_url comes first so the database outlives the server at teardown.
    server = start_server(database_url)
    assert apply(server, JOB).status_code == 201
    hub = server.hub()
    done = hub.wait("job/hello", {"succeeded"}, timeout=60)
    assert done["processes"][0]["exit_code"] == 0
    history = [e["to"] for e in hub.history("job/hello")]
    assert history[0] == "pending" and history[-1] == "succeeded"
    logs = hub.logs("job/hello")["processes"]["job"]["text"]
    assert "hello" in logs
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        engine.dispose()


def test_nodes_report_inventory_and_allocations(server: RunningServer) -> None:
    apply(
        server,
        {
            "type": "job",
            "name": "sized",
            "spec": {"command": "sleep 300", "resources": {"cpu": 1.5, "memory": "1GiB"}},
        },
    )
    server.hub().wait("job/sized", {"running"}, generation=1, timeout=60)
    (node,) = server.request("GET", "/api/v1/nodes").json()
    assert node["cpus"] == float(os.cpu_count() or 1)
    assert node["memory_bytes"] > 1024**3
    assert node["gpus"] == []  # no GPU on this machine
    assert node["allocated"] == {"cpu": 1.5, "memory_bytes": 1024**3, "gpus": 0}
    # What requests may add up to: capacity times the overcommit (CPUs 4x by default).
    assert node["overcommit"] == {"cpu": 4.0, "memory": 1.0}
    assert node["promised"] == {"cpu": node["cpus"] * 4, "memory_bytes": node["memory_bytes"]}
    assert server.request("GET", "/api/v1/nodes", token="").status_code == 401
