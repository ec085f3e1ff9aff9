"""Hostile values anywhere in a request: a 422 naming the field, and nothing stored.

Huge integers, numbers beyond a double, lone UTF-16 surrogates, NUL and other
control characters, sent to a real server (store, reconciler, the fake backend)
inside recipes and secrets, where they once gave 500s, dropped connections or
resources stored and then failing forever. The JSON text is written here, since
httpx cannot encode a lone surrogate as UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RunningServer, fake_backend_server

BIG = "9" * 5000  # beyond the 4,300 digits Python converts; written <BIG> in the texts below


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with fake_backend_server(tmp_path_factory.mktemp("hostile") / "data") as server:
        yield server


@pytest.fixture
def no_leaked_processes() -> None:
    """The fake backend starts no processes (overrides the check every other test has)."""


def send(
    server: RunningServer,
    method: str,
    path: str,
    text: str,
    content_type: str | None = "application/json",
) -> httpx.Response:
    """``text`` (JSON written by hand, ASCII only) sent as the body, with the admin token
    (and no Content-Type at all when ``content_type`` is None: FastAPI reads JSON then too)."""
    headers = {"Authorization": f"Bearer {server.token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = text.replace("<BIG>", BIG).encode()
    return httpx.request(method, server.url + path, content=body, headers=headers, timeout=30)


def stored(server: RunningServer) -> dict[str, Any]:
    """Everything the refused requests below could have left behind (not moving statuses)."""
    kept = ("id", "name", "owner", "type", "generation", "version", "tag", "members")
    return {
        noun: [
            {k: v for k, v in row.items() if k in kept}
            for row in server.request("GET", f"/api/v1/{noun}").json()
        ]
        for noun in ("resources", "secrets", "groups", "folders", "images", "users")
    }


def assert_refused(answer: httpx.Response, path: str, *words: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid"
    assert any(p["path"] == path for p in error["details"]), error
    assert path in error["message"], error["message"]
    for word in words:
        assert word in error["message"], error["message"]


RECIPES = [  # (type, spec as JSON text, the path the answer must name, a word it must say)
    (
        "cluster",
        '{"environment_variables": {"FOO": <BIG>}}',
        "spec.environment_variables.FOO",
        "range",
    ),
    ("cluster", '{"somewhere": [{"deep": <BIG>}]}', "spec.somewhere[0].deep", "range"),
    ("cluster", '{"n_workers": <BIG>}', "spec.n_workers", "range"),
    ("workspace", '{"dask_cluster": {"n_workers": <BIG>}}', "spec.dask_cluster.n_workers", "range"),
    ("cluster", '{"n_workers": 18446744073709551616}', "spec.n_workers", "range"),
    ("cluster", '{"n_workers": 2000}', "spec.n_workers", "1000"),
    ("cluster", '{"resources": {"cpu": 1e400}}', "spec.resources.cpu", "too large"),
    (
        "cluster",
        '{"resources": {"memory": "1' + "0" * 400 + 'GiB"}}',
        "spec.resources.memory",
        "8EiB",
    ),
    ("cluster", '{"auto_shutoff": "<BIG>d"}', "spec.auto_shutoff", "3650d"),
    (
        "cluster",
        '{"environment_variables": {"FOO": "\\ud800"}}',
        "spec.environment_variables.FOO",
        "surrogate",
    ),
    (
        "cluster",
        '{"environment_variables": {"FOO": "a\\udfffb"}}',
        "spec.environment_variables.FOO",
        "surrogate",
    ),
    ("job", '{"command": "echo \\ud83d"}', "spec.command", "surrogate"),
    ("job", '{"command": "echo \\u0000"}', "spec.command", "NUL"),
    ("job", '{"command": ["echo", "a\\u0000"]}', "spec.command[1]", "NUL"),
    (
        "cluster",
        '{"environment_variables": {"FOO": "x\\u0000"}}',
        "spec.environment_variables.FOO",
        "NUL",
    ),
    ("job", '{"command": "echo \\u001b[2J"}', "spec.command", "U+001B"),
    ("job", '{"command": ["echo", "\\u0007"]}', "spec.command", "item 1"),
    (
        "cluster",
        '{"environment_variables": {"FOO": "a\\rb"}}',
        "spec.environment_variables.FOO",
        "line endings",
    ),
    ("cluster", '{"working_directory": "/tmp/a\\nb"}', "spec.working_directory", "U+000A"),
    ("cluster", '{"start_script": "echo \\u009b"}', "spec.start_script", "U+009B"),
]


@pytest.mark.parametrize(("kind", "spec", "path", "word"), RECIPES, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("route", ["PUT /api/v1/recipes", "POST /api/v1/recipes/plan"])
def test_a_hostile_recipe_is_refused_naming_the_field_and_nothing_is_stored(
    hostile: RunningServer, route: str, kind: str, spec: str, path: str, word: str
) -> None:
    before = stored(hostile)
    method, url = route.split()
    text = f'{{"type": "{kind}", "name": "hostile", "spec": {spec}}}'
    if kind == "job" and '"command"' not in spec:
        text = text.replace('"spec": {', '"spec": {"command": "true", ')
    assert_refused(send(hostile, method, url, text), path, word)
    assert stored(hostile) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", '"web\\n"'), ("description", '"\\u001b]0;owned\\u0007"'), ("owner", "<BIG>")],
)
def test_hostile_envelope_fields_are_refused(
    hostile: RunningServer, field: str, value: str
) -> None:
    before = stored(hostile)
    recipe = {"type": "cluster", "name": "hostile", field: "@"}
    text = json.dumps(recipe).replace('"@"', value)
    assert_refused(send(hostile, "PUT", "/api/v1/recipes", text), field)
    assert stored(hostile) == before


def test_tab_and_newline_are_text_and_are_kept(hostile: RunningServer) -> None:
    recipe = {
        "type": "cluster",
        "name": "texty",
        "description": "one\ttwo\nthree",
        "spec": {"environment_variables": {"PEM": "a\nb\tc"}, "start_script": "a\n\tb\n"},
    }
    answer = send(hostile, "PUT", "/api/v1/recipes", json.dumps(recipe))
    assert answer.status_code == 201, answer.text
    try:
        stored = hostile.request("GET", "/api/v1/resources/cluster/texty/recipe").json()
        assert stored["spec"]["environment_variables"]["PEM"] == "a\nb\tc"
        assert stored["description"] == "one\ttwo\nthree"
    finally:
        hostile.request("DELETE", "/api/v1/resources/cluster/texty")


def test_a_huge_number_gets_an_answer_and_the_connection_stays_usable(
    hostile: RunningServer,
) -> None:
    headers = {"Authorization": f"Bearer {hostile.token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=hostile.url, headers=headers) as client:  # one kept-alive connection
        for _ in range(3):
            text = '{"type": "cluster", "name": "big", "spec": {"n_workers": <BIG>}}'
            answer = client.put("/api/v1/recipes", content=text.replace("<BIG>", BIG).encode())
            assert_refused(answer, "spec.n_workers", "range")
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("value", "word"), [('"\\ud800"', "surrogate"), ('"k\\u0000ey"', "NUL"), ("<BIG>", "range")]
)
def test_a_hostile_secret_value_is_refused_and_nothing_is_stored(
    hostile: RunningServer, value: str, word: str
) -> None:
    before = stored(hostile)
    body = f'{{"name": "token", "value": {value}}}'
    for content_type in ("application/json", None, "application/vnd.titan+json"):
        answer = send(hostile, "POST", "/api/v1/secrets", body, content_type)
        assert_refused(answer, "value", word)
    assert stored(hostile) == before
    created = send(hostile, "POST", "/api/v1/secrets", '{"name": "kept", "value": "v1"}')
    assert created.status_code == 201, created.text
    try:
        rotated = send(hostile, "PUT", "/api/v1/secrets/kept", f'{{"value": {value}}}')
        assert_refused(rotated, "value", word)
        (kept,) = [
            s for s in hostile.request("GET", "/api/v1/secrets").json() if s["name"] == "kept"
        ]
        assert kept["version"] == 1
    finally:
        hostile.request("DELETE", "/api/v1/secrets/kept")


@pytest.mark.parametrize(
    ("route", "text", "path"),
    [
        ("POST /api/v1/secrets", '{"name": "a\\u0000", "value": "v"}', "name"),
        ("POST /api/v1/groups", '{"name": "team\\ud800"}', "name"),
        ("POST /api/v1/folders", '{"name": "data\\u0000"}', "name"),
        ("POST /api/v1/images", '{"name": "titan/cpu", "tag": "x\\u0000"}', "tag"),
        ("POST /api/v1/users", '{"name": "eve\\u0000"}', "name"),
        ("POST /api/v1/tokens", '{"name": "ci\\ud800"}', "name"),
        ("PUT /api/v1/quotas/admin", '{"resources": <BIG>}', "resources"),
        ("PUT /api/v1/quotas/admin", '{"gpus": 1e400}', "gpus"),
        ("PUT /api/v1/alerts/rules/hot", '{"metric": "gpu\\u0000", "threshold": NaN}', "metric"),
    ],
)
def test_every_route_refuses_unstorable_text_naming_the_field(
    hostile: RunningServer, route: str, text: str, path: str
) -> None:
    before = stored(hostile)
    method, url = route.split()
    assert_refused(send(hostile, method, url, text), path)
    assert stored(hostile) == before


@pytest.mark.parametrize(
    ("route", "text"),
    [
        ("POST /api/v1/users", '{"name": "eve\\n"}'),
        ("POST /api/v1/groups", '{"name": "team\\n"}'),
        ("POST /api/v1/folders", '{"name": "data\\n"}'),
        ("POST /api/v1/secrets", '{"name": "db\\n", "value": "v"}'),
        ("POST /api/v1/images", '{"name": "titan/cpu", "tag": "v1\\n"}'),
        ("POST /api/v1/images", '{"name": "titan/cpu\\n"}'),
    ],
)
def test_a_name_with_a_trailing_newline_is_refused(
    hostile: RunningServer, route: str, text: str
) -> None:
    before = stored(hostile)
    method, url = route.split()
    answer = send(hostile, method, url, text)
    assert answer.status_code == 422, answer.text
    assert stored(hostile) == before


@pytest.mark.parametrize(
    "url", ["/api/v1/secrets?owner=ad%00min", "/api/v1/resources/cluster/a%00b"]
)
def test_a_nul_in_the_url_is_refused(hostile: RunningServer, url: str) -> None:
    answer = hostile.request("GET", url)
    assert answer.status_code == 422, answer.text
    assert "NUL" in answer.json()["error"]["message"]
    deleted = hostile.request("DELETE", url)  # a change: the audit log keeps it, escaped
    assert deleted.status_code == 422, deleted.text
    if "%00" in url.partition("?")[0]:  # the path is what the audit log records
        paths = [e["path"] for e in hostile.request("GET", "/api/v1/audit").json()]
        assert any("\\x00" in path for path in paths), paths


def test_the_server_is_healthy_afterwards(hostile: RunningServer, tmp_path: Path) -> None:
    assert hostile.request("GET", "/healthz").status_code == 200
    assert hostile.request("GET", "/api/v1/resources").json() == []
