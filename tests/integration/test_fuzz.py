"""Fuzzing a real server: every route of the OpenAPI spec, authenticated, and random recipes.

The server is real (HTTP, store, reconciler); its backend is the in-memory fake,
so thousands of generated recipes start no real processes. The promise checked:
no input gets a 5xx (or no answer at all), every answer matches the spec's model for
its status, a refused apply leaves nothing behind,
and hostile values (tests/hostile.py: huge numbers, lone surrogates, NUL, control
characters), put anywhere in a body and deep inside ``spec``, are always refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import response_schema_conformance

from service.app import create_app
from tests.hostile import HOSTILE, HOSTILE_TEXT, HUGE, Raw, is_hostile, poisoned, to_json
from tests.integration.conftest import RunningServer, fake_backend_server

schema = schemathesis.openapi.from_dict(create_app().openapi())
SURROGATE = re.compile("[\ud800-\udfff]")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("fuzz")
    # Generated requests often carry a wrong token: what is fuzzed here is the input, not
    # the lock-out that would soon refuse the admin's own token too.
    with fake_backend_server(root / "data", auth_failures_per_minute=1_000_000) as server:
        yield server


@pytest.fixture
def no_leaked_processes() -> None:
    """The fake backend starts no processes (overrides the check every other test has)."""


def send_json(
    server: RunningServer, method: str, path: str, body: Any, **kw: Any
) -> httpx.Response:
    """``body`` written by :func:`to_json` (so it may hold anything hostile) and sent."""
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return server.request(method, path, content=to_json(body).encode(), headers=headers, **kw)


@schema.parametrize()
@schema.given(poison=st.none() | HOSTILE, spot=st.integers(0, 1000))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_route_answers_any_input_with_a_server_error(
    case: schemathesis.Case, poison: Any, spot: int, fuzzed: RunningServer
) -> None:
    if poison is None or case.media_type != "application/json":
        response = case.call(
            base_url=fuzzed.url, headers={"Authorization": f"Bearer {fuzzed.token}"}, timeout=30
        )
        assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
        # Each answer is the one the spec declares for its status (the models in
        # service/api/answers), success or refusal alike.
        case.validate_response(response, checks=[response_schema_conformance])
        return
    body = poisoned(case.body, poison, spot)
    answer = send_json(fuzzed, case.method, case.formatted_path, body, params=case.query)
    assert answer.status_code < 500, (case.method, case.formatted_path, answer.text[:500])
    # Out-of-range numbers, NUL and lone surrogates are refused on every route but the
    # samplers' (which parses its own bytes; a reading of 1e19 is a reading there).
    unstorable = isinstance(poison, Raw) or (
        isinstance(poison, str) and ("\x00" in poison or SURROGATE.search(poison) is not None)
    )
    if unstorable and case.path != "/api/v1/telemetry":
        assert answer.status_code == 422, (case.method, case.formatted_path, answer.text[:500])


LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither: HUGE sends them
    | st.text(max_size=20)
    | HOSTILE,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | HOSTILE_TEXT, inner, max_size=3)
    ),
    max_leaves=8,
)
TEXT = st.text(max_size=5) | HOSTILE_TEXT
SIZE = st.fixed_dictionaries(
    {},
    optional={
        "cpu": st.sampled_from([0.5, 1, 2, -1, 0]) | HUGE | JUNK,
        "memory": st.sampled_from(["1GiB", "64MiB", "900TiB", "lots", "1" + "0" * 400 + "B"])
        | JUNK,
        "gpu": st.sampled_from([0, 1, 2]) | HUGE | JUNK,
    },
)
WORKER = st.fixed_dictionaries(
    {},
    optional={
        "nthreads": st.integers(-1, 4) | HUGE | JUNK,
        "gpu": st.sampled_from([0, 0.25, 0.5, 1, 1.5, 0.333]) | JUNK,
        "memory": st.sampled_from(["1GiB", "x"]),
    },
)
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "command": st.sampled_from(["true", ["python", "-c", "pass"], "", []])
        | TEXT
        | st.lists(TEXT, max_size=3)
        | JUNK,
        "n_workers": st.integers(-1, 3) | HUGE | JUNK,
        "worker": WORKER | JUNK,
        "resources": SIZE | JUNK,
        "instance_type": st.sampled_from(["cpu-small", "gpu-1", "huge"]) | JUNK,
        "image": st.sampled_from(["titan/cpu:latest", "evil/miner:1", "bad image!"]) | JUNK,
        "environment_variables": st.dictionaries(
            st.sampled_from(["A", "TITAN_TOKEN", "1BAD", "B", "C\n"]) | HOSTILE_TEXT,
            TEXT | HUGE,
            max_size=2,
        )
        | JUNK,
        "working_directory": st.sampled_from(["/tmp", "/tmp/a\nb"]) | TEXT | JUNK,
        "start_script": TEXT | JUNK,
        "secrets": st.lists(
            st.fixed_dictionaries(
                {"name": LABEL},
                optional={"env": st.sampled_from(["X", "TITAN_X"]) | TEXT, "file": TEXT},
            ),
            max_size=2,
        )
        | JUNK,
        "auto_shutoff": st.sampled_from(["never", "10m", "soon", "99999999999999d"]) | JUNK,
        "dask_cluster": st.fixed_dictionaries(
            {}, optional={"n_workers": st.integers(0, 2) | HUGE, "worker": WORKER | JUNK}
        ),
        "unknown": JUNK,
    },
)
RECIPE = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["workspace", "cluster", "job", "deployment", "nope"]) | JUNK,
            "name": LABEL | LABEL.map(lambda name: name + "\n") | JUNK,
            "description": TEXT | JUNK,
            "owner": st.sampled_from(["admin", "nobody", "Bad!"]) | JUNK,
            "schema_version": st.sampled_from([1, 2]),
            "spec": SPEC | JUNK,
        },
    )
    | JUNK
)


def state(server: RunningServer) -> list[tuple[Any, ...]]:
    """What the store holds, as the API shows it: every resource with its recipe."""
    rows = server.request("GET", "/api/v1/resources").json()
    assert isinstance(rows, list), f"the admin cannot list resources: {rows}"
    out = []
    for row in rows:
        recipe = server.request(
            "GET",
            f"/api/v1/resources/{row['type']}/{row['name']}/recipe",
            params={"owner": row["owner"]},
        ).json()
        out.append((row["id"], row["generation"], repr(recipe)))
    return sorted(out)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(recipe=RECIPE)
def test_random_recipes_are_applied_whole_or_refused_whole(
    fuzzed: RunningServer, recipe: Any
) -> None:
    before = state(fuzzed)
    answer = send_json(fuzzed, "PUT", "/api/v1/recipes", recipe)
    assert answer.status_code < 500, answer.text
    if is_hostile(recipe):  # no part of a recipe may hold a control character or huge number
        assert 400 <= answer.status_code < 500, f"a hostile recipe was applied: {recipe!r}"
    if answer.status_code >= 400:
        assert state(fuzzed) == before, f"a refused apply changed the store: {answer.text}"
        assert "message" in answer.json()["error"]
        return
    applied = answer.json()["resource"]
    stored = fuzzed.request(
        "GET",
        f"/api/v1/resources/{applied['type']}/{applied['name']}/recipe",
        params={"owner": applied["owner"]},
    ).json()
    assert stored["name"] == recipe["name"] and stored["type"] == recipe["type"]
    after = state(fuzzed)
    assert len(after) - len(before) == (answer.json()["action"] == "created")


def test_the_fuzzed_server_is_healthy_afterwards(fuzzed: RunningServer, tmp_path: Path) -> None:
    assert fuzzed.request("GET", "/healthz").status_code == 200
