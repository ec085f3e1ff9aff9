"""Fuzzing a real server: every route of the OpenAPI spec, authenticated, and random recipes.

The server is real (HTTP, store, reconciler); its backend is the in-memory fake,
so thousands of generated recipes start no real processes. The promise checked:
no input gets a 5xx, and a refused apply leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from tests.conftest import make_settings
from tests.fakes import FakeBackend
from tests.integration.conftest import RunningServer

schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("fuzz")
    server = RunningServer(make_settings(root / "data"), FakeBackend())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def no_leaked_processes() -> None:
    """The fake backend starts no processes (overrides the check every other test has)."""


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_route_answers_any_input_with_a_server_error(
    case: schemathesis.Case, fuzzed: RunningServer
) -> None:
    response = case.call(
        base_url=fuzzed.url, headers={"Authorization": f"Bearer {fuzzed.token}"}, timeout=30
    )
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])


LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
SIZE = st.fixed_dictionaries(
    {},
    optional={
        "cpu": st.sampled_from([0.5, 1, 2, -1, 0]) | JUNK,
        "memory": st.sampled_from(["1GiB", "64MiB", "900TiB", "lots"]) | JUNK,
        "gpu": st.sampled_from([0, 1, 2]) | JUNK,
    },
)
WORKER = st.fixed_dictionaries(
    {},
    optional={
        "nthreads": st.integers(-1, 4) | JUNK,
        "gpu": st.sampled_from([0, 0.25, 0.5, 1, 1.5, 0.333]) | JUNK,
        "memory": st.sampled_from(["1GiB", "x"]),
    },
)
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "command": st.sampled_from(["true", ["python", "-c", "pass"], "", []]) | JUNK,
        "n_workers": st.integers(-1, 3) | JUNK,
        "worker": WORKER | JUNK,
        "resources": SIZE | JUNK,
        "instance_type": st.sampled_from(["cpu-small", "gpu-1", "huge"]) | JUNK,
        "image": st.sampled_from(["titan/cpu:latest", "evil/miner:1", "bad image!"]) | JUNK,
        "environment_variables": st.dictionaries(
            st.sampled_from(["A", "TITAN_TOKEN", "1BAD", "B"]), st.text(max_size=5), max_size=2
        )
        | JUNK,
        "secrets": st.lists(
            st.fixed_dictionaries(
                {"name": LABEL},
                optional={"env": st.sampled_from(["X", "TITAN_X"]), "file": st.text(max_size=5)},
            ),
            max_size=2,
        )
        | JUNK,
        "auto_shutoff": st.sampled_from(["never", "10m", "soon"]) | JUNK,
        "dask_cluster": st.fixed_dictionaries({}, optional={"n_workers": st.integers(0, 2)}),
        "unknown": JUNK,
    },
)
RECIPE = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["workspace", "cluster", "job", "deployment", "nope"]) | JUNK,
            "name": LABEL | JUNK,
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
    answer = fuzzed.request("PUT", "/api/v1/recipes", json=recipe)
    assert answer.status_code < 500, answer.text
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
