"""Write conflicts: an apply made from an old read is refused (409), never silently wins.

``GET .../recipe`` answers the generation as its ETag; ``PUT /recipes`` with
``If-Match`` applies only onto that generation. ``Hub.edit`` (what
``TitanCluster.scale``/``adapt`` use) redoes its edit on the newer recipe.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.client.errors import ConflictError
from tests.integration.conftest import RunningServer

PARKED = {"command": "sleep 600", "resources": {"cpu": 0.1, "memory": "64MiB"}}


def recipe(name: str, **env: str) -> dict[str, Any]:
    return {"type": "job", "name": name, "spec": {**PARKED, "environment_variables": env}}


def put(server: RunningServer, body: dict[str, Any], if_match: str | None) -> Any:
    headers = {} if if_match is None else {"If-Match": if_match}
    return server.request("PUT", "/api/v1/recipes", json=body, headers=headers)


def test_an_apply_from_an_old_read_gets_409_and_changes_nothing(server: RunningServer) -> None:
    assert put(server, recipe("w1", A="1"), '"0"').status_code == 201  # create-only: absent
    again = put(server, recipe("w1", A="other"), '"0"')
    assert again.status_code == 409 and "generation 1" in again.json()["error"]["message"]

    read = server.request("GET", "/api/v1/resources/job/w1/recipe")
    assert read.headers["etag"] == '"1"'
    mine = put(server, recipe("w1", A="2"), read.headers["etag"])
    assert mine.status_code == 200 and mine.json()["resource"]["generation"] == 2

    stale = put(server, recipe("w1", A="3"), read.headers["etag"])
    assert stale.status_code == 409, stale.text
    message = stale.json()["error"]["message"]
    assert "If-Match" in message and "generation 2" in message and "read its recipe" in message
    now = server.request("GET", "/api/v1/resources/job/w1/recipe")
    assert (
        now.json()["spec"]["environment_variables"] == {"A": "2"} and now.headers["etag"] == '"2"'
    )
    assert put(server, recipe("w1", A="4"), 'W/"2"').status_code == 200  # weak ETag form
    assert put(server, recipe("w1", A="5"), None).status_code == 200  # no header: no check


@pytest.mark.parametrize("bad", ["abc", '"-1"', "*", "1" * 40, "1.5", "0x10"])
def test_an_if_match_that_is_no_generation_is_refused_naming_the_header(
    server: RunningServer, bad: str
) -> None:
    answer = put(server, recipe("w2"), bad)
    assert answer.status_code == 422, (bad, answer.status_code)
    assert answer.json()["error"]["message"].startswith("If-Match:")
    assert server.request("GET", "/api/v1/resources/job/w2").status_code == 404  # nothing made


def test_hub_edit_redoes_its_change_on_top_of_a_concurrent_apply(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply(recipe("w3", A="1"))
    calls = 0

    def change(body: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # someone else applies between our read and our write
            assert put(server, recipe("w3", A="1", THEIRS="yes"), None).status_code == 200
        body["spec"]["environment_variables"]["MINE"] = "yes"

    applied = hub.edit("job/w3", change)
    assert calls == 2
    assert hub.recipe("job/w3")["spec"]["environment_variables"] == {
        "A": "1",
        "THEIRS": "yes",
        "MINE": "yes",
    }
    assert applied["resource"]["generation"] == 3


def test_hub_edit_gives_up_with_a_conflict_when_others_always_win(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply(recipe("w4", N="0"))
    count = 0

    def change(body: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        assert (
            put(server, recipe("w4", N=str(count)), None).status_code == 200
        )  # another writer wins every time

    with pytest.raises(ConflictError, match="If-Match"):
        hub.edit("job/w4", change)
    assert hub.recipe("job/w4")["spec"]["environment_variables"] == {"N": str(count)}
