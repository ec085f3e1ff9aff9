"""The console by every kind of signed-in user: it answers each as the API's access rules
say (tests/integration/test_access_matrix.py), because its pages call the same services.

The job ``team/job/j`` is owned by the group ``team``: ``olive`` is its group admin,
``gus`` a plain member, ``oscar`` in no group.
"""

from __future__ import annotations

import pytest

from tests.console_client import Console
from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.slow
WHO = ("oscar", "gus", "olive", "admin")
JOB = {"type": "job", "name": "j", "owner": "team", "spec": {"command": "sleep 300"}}


@pytest.fixture
def consoles(server: RunningServer) -> dict[str, Console]:
    tokens = {"admin": server.token}
    for name in ("olive", "gus", "oscar"):
        tokens[name] = server.request("POST", "/api/v1/users", json={"name": name}).json()["token"]
    server.request("POST", "/api/v1/groups", json={"name": "team", "admins": ["olive"]})
    server.request("PUT", "/api/v1/groups/team/members/gus", json={"role": "member"})
    assert server.request("PUT", "/api/v1/recipes", json=JOB).status_code == 201
    made = {who: Console(server.url, token) for who, token in tokens.items()}
    yield made
    for console in made.values():
        console.close()


def _statuses(consoles: dict[str, Console], call: object) -> tuple[int, ...]:
    return tuple(call(consoles[who]).status_code for who in WHO)  # type: ignore[operator]


def test_each_user_sees_and_changes_what_the_rules_allow(
    server: RunningServer, consoles: dict[str, Console]
) -> None:
    page = "/resources/job/j?owner=team"
    assert _statuses(consoles, lambda c: c.get(page)) == (404, 200, 200, 200)
    assert _statuses(consoles, lambda c: c.get("/resources/job/j/live?owner=team")) == (
        404,
        200,
        200,
        200,
    )
    listed = {who: 'data-resource="job/j"' in consoles[who].get("/").text for who in WHO}
    assert listed == {"oscar": False, "gus": True, "olive": True, "admin": True}
    # Stopping: the outsider is told nothing exists, the member may not, the owner may.
    stop = [consoles[who].post("/resources/job/j/stop", {"owner": "team"}) for who in WHO[:3]]
    assert [answer.status_code for answer in stop] == [404, 403, 303]
    job = server.request("GET", "/api/v1/resources/job/j?owner=team").json()
    assert job["target"] == "stopped"


def test_a_plan_and_apply_from_the_console_obey_the_owner_rules(
    server: RunningServer, consoles: dict[str, Console]
) -> None:
    edited = '{"type": "job", "name": "j", "owner": "team", "spec": {"command": "sleep 301"}}'
    plans = [
        consoles[who].post("/resources/job/j/plan", {"owner": "team", "recipe": edited})
        for who in WHO
    ]
    assert [p.status_code for p in plans] == [404, 200, 200, 200]
    assert "problem" in plans[1].text and "Apply this plan" not in plans[1].text  # gus
    assert "Apply this plan" in plans[2].text and "sleep 301" in plans[2].text  # olive
    generation = server.request("GET", "/api/v1/resources/job/j?owner=team").json()["generation"]
    applied = consoles["olive"].post(
        "/resources/job/j/apply", {"owner": "team", "recipe": edited, "generation": generation}
    )
    assert applied.status_code == 303
    stale = consoles["admin"].post(
        "/resources/job/j/apply", {"owner": "team", "recipe": edited, "generation": generation}
    )
    assert stale.status_code == 409 and "changed it since you read it" in stale.text


def test_a_jobs_runs_follow_the_same_rules(
    server: RunningServer, consoles: dict[str, Console]
) -> None:
    # ``j`` ran when applied: run 1 goes on (sleep 300).
    for path in (
        "/resources/job/j/runs?owner=team",
        "/resources/job/j/runs/1?owner=team",
    ):
        assert _statuses(consoles, lambda c, p=path: c.get(p)) == (404, 200, 200, 200), path
    page = consoles["gus"].get("/resources/job/j?owner=team").text
    assert 'data-run="1"' in page and "Run now" in page
    assert "data-run" not in consoles["oscar"].get("/resources/job/j/runs?owner=team").text
    # Run now: nothing for the outsider, not for a plain member; the group's admin is
    # answered by the job's concurrency policy (Forbid, while run 1 goes on).
    asked = [consoles[who].post("/resources/job/j/run-now", {"owner": "team"}) for who in WHO[:3]]
    assert [answer.status_code for answer in asked] == [404, 403, 409]
    assert "concurrency_policy is Forbid" in asked[2].text
    runs = server.request("GET", "/api/v1/resources/job/j/runs?owner=team").json()
    assert [run["number"] for run in runs] == [1]
