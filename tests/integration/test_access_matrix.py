"""Every route of the app by every kind of caller, against the status the access rules promise.

The routes are read from the application itself: a route missing from
``MATRIX`` fails the test, so no new route can skip the check. The objects
called on are owned by the group ``team``: ``olive`` is its group admin
(the owner's rights), ``gus`` a plain member, ``oscar`` in no group. The
resource token belongs to the resource ``team/job/m``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from service.app import create_app
from service.console import routes as console
from service.core.identity.auth import issue_token
from service.database.db import make_engine, session_factory
from service.database.models import Resource, User
from tests.integration.conftest import RunningServer
from tests.openapi_answers import mismatches
from tests.waiting import wait_for

WHO = ("anonymous", "resource-token", "other", "member", "owner", "admin")
# A job that fits the node only while nothing else runs, so it waits pending beside the
# world's one small running job and starts no process (the world sizes its memory).
PARKED: dict[str, Any] = {
    "type": "job",
    "owner": "team",
    "spec": {"command": "true", "resources": {"cpu": 1, "memory": "1GiB"}},
}


@dataclass
class World:
    """The server, a token per identity, and the ids of objects made for the calls."""

    server: RunningServer
    tokens: dict[str, str]
    images: dict[str, int] = field(default_factory=dict)
    token_ids: dict[str, int] = field(default_factory=dict)  # olive's, one per caller

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        response = self.server.request(method, path, **kw)
        assert response.status_code < 300, (method, path, response.text)
        return response.json() if response.content else None


@dataclass(frozen=True)
class Case:
    """One route: how to call it, what to prepare first, and the status for each of WHO."""

    method: str
    route: str
    expect: tuple[int, int, int, int, int, int]
    path: str = ""  # the route with its parameters; {who} is the caller's name
    body: Callable[[str], Any] | None = None
    setup: Callable[[World, str], None] | None = None


def _parked(name: str) -> Callable[[World, str], None]:
    def setup(world: World, who: str) -> None:
        world.admin("PUT", "/api/v1/recipes", json={**PARKED, "name": name.format(who=who)})

    return setup


def _deployment(world: World, who: str) -> None:
    """The group's deployment ``dp``, parked like the job (so no replica runs)."""
    spec = {**PARKED["spec"], "command": "serve"}
    recipe = {**PARKED, "type": "deployment", "name": "dp", "spec": spec}
    world.admin("PUT", "/api/v1/recipes", json=recipe)


def _replacing(name: str) -> Callable[[World, str], None]:
    """A parked job whose runs replace each other: a manual run of it always begins."""

    def setup(world: World, who: str) -> None:
        spec = {**PARKED["spec"], "concurrency_policy": "Replace"}
        world.admin("PUT", "/api/v1/recipes", json={**PARKED, "name": name, "spec": spec})

    return setup


def _group(world: World, who: str) -> None:
    if world.server.request("GET", f"/api/v1/groups/gd-{who}").status_code == 404:
        world.admin("POST", "/api/v1/groups", json={"name": f"gd-{who}"})


def _newbie(world: World, who: str) -> None:
    world.admin("PUT", "/api/v1/groups/team/members/newbie", json={"role": "member"})


def _quota(world: World, who: str) -> None:
    world.admin("PUT", "/api/v1/quotas/team", json={"gpus": 8})


def _secret(world: World, who: str) -> None:
    answer = world.server.request(
        "POST", "/api/v1/secrets", json={"name": "s1", "owner": "team", "value": "v"}
    )
    assert answer.status_code in (201, 409)


def _folder(world: World, who: str) -> None:
    answer = world.server.request("POST", "/api/v1/folders", json={"name": "fd", "owner": "team"})
    assert answer.status_code in (201, 409)


def _rule(world: World, who: str) -> None:
    world.admin("PUT", "/api/v1/alerts/rules/r1", json={"metric": "host_cpu_percent"})


def _image(world: World, who: str) -> None:
    made = world.admin(
        "POST", "/api/v1/images", json={"name": f"team/d-{who}", "tag": "1", "owner": "team"}
    )
    world.images[who] = made["id"]


def _user(name: str) -> Callable[[World, str], None]:
    def setup(world: World, who: str) -> None:
        user = name.format(who=who)
        if all(u["name"] != user for u in world.admin("GET", "/api/v1/users")):
            world.admin("POST", "/api/v1/users", json={"name": user})

    return setup


def _olives_token(world: World, who: str) -> None:
    made = world.admin("POST", "/api/v1/tokens", json={"user": "olive", "name": f"m-{who}"})
    world.token_ids[who] = made["id"]


def _result(world: World, who: str) -> None:
    """A file the job ``team/job/m`` wrote to its outputs in its run 1, as a job's owner
    would."""
    folder = world.server.settings.outputs_dir / "team" / "job" / "m" / "runs" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.txt").write_text("42\n")


def _sample(who: str) -> dict[str, Any]:
    values = {"host_cpu_percent": 1.0}
    sample = {"time": time.time(), "source": "host:matrix", "values": values}
    return {"resource": "team/job/m", "samples": [sample]}


R = "/api/v1/resources/{type}/{name}"
M = "/api/v1/resources/job/m"
T = "?owner=team"
#            anonymous, resource token, other user, group member, owner, admin
PUBLIC = (200, 200, 200, 200, 200, 200)
ANY_USER = (401, 403, 200, 200, 200, 200)
ADMINS = (401, 403, 403, 403, 403, 200)
SEE = (401, 200, 404, 200, 200, 200)  # the resource token's own resource
CHANGE = (401, 403, 404, 403, 202, 202)

MATRIX = [
    Case("GET", "/healthz", PUBLIC),
    Case("GET", "/openapi.json", PUBLIC),
    Case("GET", "/docs", PUBLIC),
    Case("GET", "/docs/oauth2-redirect", PUBLIC),
    Case("GET", "/redoc", PUBLIC),
    Case(
        "PUT",
        "/api/v1/recipes",
        (401, 403, 403, 403, 200, 200),
        body=lambda who: {**PARKED, "name": "m"},
    ),
    Case(
        "POST",
        "/api/v1/recipes/plan",
        (401, 403, 403, 403, 200, 200),
        body=lambda who: {**PARKED, "name": "m"},
    ),
    Case(
        "POST",
        "/api/v1/recipes/import/saturn",
        ANY_USER,  # converting applies nothing: any signed-in user may
        body=lambda who: {"type": "job", "spec": {"name": "m", "command": "true"}},
    ),
    Case("GET", "/api/v1/resources", (401, 200, 200, 200, 200, 200)),
    Case("GET", R, SEE, M + T),
    Case("GET", R + "/recipe", SEE, M + "/recipe" + T),
    Case("GET", R + "/history", SEE, M + "/history" + T),
    Case("GET", R + "/logs", SEE, M + "/logs" + T),
    Case("GET", R + "/outputs", SEE, M + "/outputs" + T, setup=_result),
    Case("GET", R + "/outputs/{path:path}", SEE, M + "/outputs/result.txt" + T, setup=_result),
    Case("GET", R + "/telemetry", SEE, M + "/telemetry" + T + "&metric=host_cpu_percent"),
    Case(
        "GET",
        R + "/credentials",
        (401, 403, 404, 200, 200, 200),
        "/api/v1/resources/cluster/pc/credentials" + T,
    ),
    Case("POST", R + "/start", CHANGE, M + "/start" + T),
    Case("GET", "/api/v1/resources/job/{name}/runs", SEE, M + "/runs" + T),
    Case("GET", "/api/v1/resources/job/{name}/runs/{number}", SEE, M + "/runs/1" + T),
    Case(
        "POST",
        "/api/v1/resources/job/{name}/runs",
        (401, 403, 404, 403, 201, 201),
        "/api/v1/resources/job/rn/runs" + T,
        setup=_replacing("rn"),
    ),
    Case("POST", R + "/stop", CHANGE, M + "/stop" + T),
    # Applied once: nothing to roll back to (409) for who may change it.
    Case(
        "POST",
        "/api/v1/resources/deployment/{name}/rollback",
        (401, 403, 404, 403, 409, 409),
        "/api/v1/resources/deployment/dp/rollback" + T,
        setup=_deployment,
    ),
    Case(
        "DELETE",
        R,
        CHANGE,
        "/api/v1/resources/job/d-{who}" + T,
        setup=_parked("d-{who}"),
    ),
    Case("GET", "/api/v1/nodes", ANY_USER),
    Case("GET", "/api/v1/users/me", (401, 200, 200, 200, 200, 200)),
    Case("GET", "/api/v1/users", ADMINS),
    Case(
        "POST",
        "/api/v1/users",
        (401, 403, 403, 403, 403, 201),
        body=lambda who: {"name": f"u-{who}"},
    ),
    Case(
        "POST",
        "/api/v1/users/{name}/disable",
        ADMINS,
        "/api/v1/users/x-{who}/disable",
        setup=_user("x-{who}"),
    ),
    Case(
        "POST",
        "/api/v1/users/{name}/enable",
        ADMINS,
        "/api/v1/users/x-{who}/enable",
        setup=_user("x-{who}"),
    ),
    Case(
        "DELETE",
        "/api/v1/users/{name}",
        ADMINS,
        "/api/v1/users/y-{who}",
        setup=_user("y-{who}"),
    ),
    Case("POST", "/api/v1/tokens", (401, 403, 201, 201, 201, 201), body=lambda who: {}),
    Case("GET", "/api/v1/tokens", ANY_USER),
    # Another user's token is answered as not found: its id tells nothing.
    Case(
        "DELETE",
        "/api/v1/tokens/{token_id}",
        (401, 403, 404, 404, 204, 204),
        "/api/v1/tokens/{token}",
        setup=_olives_token,
    ),
    Case("GET", "/api/v1/groups", ANY_USER),
    Case(
        "POST",
        "/api/v1/groups",
        (401, 403, 403, 403, 403, 201),
        body=lambda who: {"name": f"g-{who}"},
    ),
    Case("GET", "/api/v1/groups/{name}", (401, 403, 404, 200, 200, 200), "/api/v1/groups/team"),
    Case(
        "DELETE",
        "/api/v1/groups/{name}",
        (401, 403, 403, 403, 403, 204),
        "/api/v1/groups/gd-{who}",
        setup=_group,
    ),
    Case(
        "PUT",
        "/api/v1/groups/{name}/members/{user}",
        (401, 403, 404, 403, 200, 200),
        "/api/v1/groups/team/members/newbie",
        body=lambda who: {"role": "member"},
    ),
    Case(
        "DELETE",
        "/api/v1/groups/{name}/members/{user}",
        (401, 403, 404, 403, 200, 200),
        "/api/v1/groups/team/members/newbie",
        setup=_newbie,
    ),
    Case("GET", "/api/v1/quotas", ADMINS),
    Case("GET", "/api/v1/quotas/{owner}", (401, 403, 404, 200, 200, 200), "/api/v1/quotas/team"),
    Case(
        "PUT",
        "/api/v1/quotas/{owner}",
        ADMINS,
        "/api/v1/quotas/team",
        body=lambda who: {"gpus": 8},
    ),
    Case(
        "DELETE",
        "/api/v1/quotas/{owner}",
        (401, 403, 403, 403, 403, 204),
        "/api/v1/quotas/team",
        setup=_quota,
    ),
    Case("GET", "/api/v1/secrets", ANY_USER),
    Case(
        "POST",
        "/api/v1/secrets",
        (401, 403, 403, 403, 201, 201),
        body=lambda who: {"name": f"s-{who}", "owner": "team", "value": "v"},
    ),
    Case("POST", "/api/v1/secrets/reencrypt", ADMINS),
    Case(
        "PUT",
        "/api/v1/secrets/{name}",
        (401, 403, 404, 403, 200, 200),
        "/api/v1/secrets/s1" + T,
        body=lambda who: {"value": "w"},
        setup=_secret,
    ),
    Case(
        "DELETE",
        "/api/v1/secrets/{name}",
        (401, 403, 404, 403, 204, 204),
        "/api/v1/secrets/s1" + T,
        setup=_secret,
    ),
    Case("GET", "/api/v1/images", ANY_USER),
    Case(
        "POST",
        "/api/v1/images",
        (401, 403, 403, 403, 201, 201),
        body=lambda who: {"name": f"team/i-{who}", "owner": "team"},
    ),
    Case(
        "DELETE",
        "/api/v1/images/{image_id}",
        (401, 403, 404, 403, 204, 204),
        "/api/v1/images/{image}",
        setup=_image,
    ),
    Case("GET", "/api/v1/folders", ANY_USER),
    Case(
        "POST",
        "/api/v1/folders",
        (401, 403, 403, 403, 201, 201),
        body=lambda who: {"name": f"f-{who}", "owner": "team"},
    ),
    Case(
        "DELETE",
        "/api/v1/folders/{name}",
        (401, 403, 404, 403, 204, 204),
        "/api/v1/folders/fd" + T,
        setup=_folder,
    ),
    # No dashboard runs for a parked job: who may look gets 404 like who may not.
    *(
        Case(
            method,
            "/dashboards/{resource_id}/{path:path}",
            (401, 404, 404, 404, 404, 404),
            "/dashboards/{resource_id}/api/jobs/",
        )
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")  # a Ray Jobs API call too
    ),
    # JupyterLab through the front door is using the workspace: who may change it, and
    # the parked job runs none (404); a resource token or a member may not (403).
    *(
        Case(
            method,
            "/jupyter/{resource_id}/{path:path}",
            (401, 403, 404, 403, 404, 404),
            "/jupyter/{resource_id}/api/kernels",
        )
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ),
    # A deployment's front door: its default route lets in its owner (the group's members)
    # and admins, who find no healthy replica of the parked deployment (503).
    *(
        Case(method, route, (401, 403, 404, 503, 503, 503), path, setup=_deployment)
        for method in ("GET", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
        for route, path in (
            ("/deploy/{owner}/{name}", "/deploy/team/dp"),
            ("/deploy/{owner}/{name}/{path:path}", "/deploy/team/dp/v1/predict"),
        )
    ),
    Case("POST", "/api/v1/telemetry", (401, 202, 403, 403, 403, 202), body=_sample),
    Case("GET", "/api/v1/telemetry/current", (401, 200, 200, 200, 200, 200)),
    Case("GET", "/api/v1/telemetry/metrics", (401, 200, 200, 200, 200, 200)),
    Case("GET", "/metrics", ANY_USER),
    Case("GET", "/api/v1/alerts", ANY_USER),
    Case("GET", "/api/v1/alerts/rules", ANY_USER),
    Case(
        "PUT",
        "/api/v1/alerts/rules/{name}",
        ADMINS,
        "/api/v1/alerts/rules/r1",
        body=lambda who: {"metric": "host_cpu_percent"},
    ),
    Case(
        "DELETE",
        "/api/v1/alerts/rules/{name}",
        (401, 403, 403, 403, 403, 204),
        "/api/v1/alerts/rules/r1",
        setup=_rule,
    ),
    Case("GET", "/api/v1/reclaims", ANY_USER),
    Case("GET", "/api/v1/audit", ADMINS),
    Case("GET", "/api/v1/usage", ANY_USER),
]


def _console_cases() -> list[Case]:
    """The console's routes: they answer only to a console session (its cookie), never to
    a token in the header, so every caller here is sent to sign in (303), except the
    sign-in form itself (200) and a sign-in with no token typed in (401). What each
    signed-in caller may do there: tests/integration/test_console_access.py."""
    fill = {"type": "job", "name": "m", "action": "stop"}
    cases = []
    for module in console.PAGES + console.ADMIN_PAGES:
        for route in module.router.routes:
            for method in sorted(route.methods - {"HEAD"}):
                path = re.sub(r"{(\w+)}", lambda m: fill.get(m[1], "1"), route.path)
                expect = {("GET", "/sign-in"): (200,) * 6, ("POST", "/sign-in"): (401,) * 6}
                cases.append(
                    Case(method, route.path, expect.get((method, route.path), (303,) * 6), path)
                )
    return cases


MATRIX += _console_cases()
# Not HTTP: the dashboard's live plots and JupyterLab's kernels. Checked by the same
# code as their page routes (``dashboard_upstream``, ``jupyter_upstream``) in
# tests/integration/test_dashboards.py and test_local_processes.py.
WEBSOCKETS = {"/dashboards/{resource_id}/{path:path}", "/jupyter/{resource_id}/{path:path}"}
STATIC = "/static"  # the console's scripts and styles: public files (test_console_session.py)


def app_routes() -> set[tuple[str, str]]:
    """Every (method, path) the application serves, read from its route table."""

    def walk(routes: list[Any]) -> Any:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                yield from walk(route.original_router.routes)
            else:
                yield route

    found = set()
    for route in walk(create_app().routes):
        methods = getattr(route, "methods", None)
        if methods is None and route.path == STATIC:
            continue
        if methods is None:
            assert route.path in WEBSOCKETS, f"a new non-HTTP route: {route.path}"
            continue
        found |= {(method, route.path) for method in methods if method != "HEAD"}
    return found


def test_the_matrix_covers_every_route() -> None:
    covered = {(case.method, case.route) for case in MATRIX}
    missing = sorted(app_routes() - covered)
    assert not missing, f"add these routes to MATRIX with their expected statuses: {missing}"
    assert not covered - app_routes(), "MATRIX names routes the app no longer has"


@pytest.fixture
def world(start_server: Any) -> World:
    server: RunningServer = start_server(auth_failures_per_minute=100_000)  # many 401s follow
    tokens = {"admin": server.token, "anonymous": ""}
    for who, name in (("owner", "olive"), ("member", "gus"), ("other", "oscar")):
        made = server.request("POST", "/api/v1/users", json={"name": name}).json()
        tokens[who] = made["token"]
    server.request("POST", "/api/v1/users", json={"name": "newbie"})
    world = World(server, tokens)
    world.admin("POST", "/api/v1/groups", json={"name": "team", "admins": ["olive"]})
    world.admin("PUT", "/api/v1/groups/team/members/gus", json={"role": "member"})
    # Most of the node's memory: it fits once nothing else runs, so it is admitted; while
    # the small job below runs, it waits.
    node_memory = world.admin("GET", "/api/v1/nodes")[0]["memory_bytes"]
    most = f"{node_memory // 2**20 - 512}MiB"
    PARKED["spec"]["resources"]["memory"] = most
    small = {"command": "sleep 600", "resources": {"cpu": 0.1, "memory": "1GiB"}}
    world.admin("PUT", "/api/v1/recipes", json={"type": "job", "name": "small", "spec": small})
    wait_for(lambda: world.admin("GET", "/api/v1/resources/job/small")["status"] == "running")
    world.admin("PUT", "/api/v1/recipes", json={**PARKED, "name": "m"})
    parked_cluster = {"n_workers": 1, "scheduler": {"memory": most}}  # waits: nothing starts
    cluster = {"type": "cluster", "owner": "team", "name": "pc", "spec": parked_cluster}
    world.admin("PUT", "/api/v1/recipes", json=cluster)
    engine = make_engine(server.settings.sqlalchemy_url)
    try:
        with session_factory(engine).begin() as session:
            olive = session.scalars(select(User).where(User.name == "olive")).one()
            job = session.scalars(select(Resource).where(Resource.name == "m")).one()
            tokens["resource-token"] = issue_token(session, olive, "matrix", job.id)
            world.images["resource_id"] = 0
            tokens["resource_id"] = job.id
    finally:
        engine.dispose()
    return world


def test_every_route_answers_each_caller_as_the_rules_say(world: World) -> None:
    wrong = []
    for case in MATRIX:
        for who, expected in zip(WHO, case.expect, strict=True):
            if case.setup is not None:
                case.setup(world, who)
            path = (case.path or case.route).format(
                who=who,
                image=world.images.get(who, 0),
                token=world.token_ids.get(who, 0),
                resource_id=world.tokens["resource_id"],
            )
            body = case.body(who) if case.body is not None else None
            answer = world.server.request(case.method, path, token=world.tokens[who], json=body)
            if answer.status_code != expected:
                wrong.append(
                    f"{case.method} {path} as {who}: {answer.status_code} "
                    f"(expected {expected}) {answer.text[:200]}"
                )
            # A server error is never right; 503 is, where promised (no healthy replica).
            assert answer.status_code < 500 or answer.status_code == expected == 503, answer.text
            if answer.headers.get("content-type", "").startswith("application/json"):
                # Every answer, success or refusal, is the one the spec declares.
                wrong += mismatches(case.method, case.route, answer.status_code, answer.json())
            if who == "anonymous":  # a wrong token is no better than none
                forged = world.server.request(case.method, path, token="titan_forged", json=body)
                assert forged.status_code == expected, (case.method, path, forged.text)
    assert not wrong, "\n".join(wrong)


def test_callers_see_only_what_they_may(world: World) -> None:
    def names(who: str) -> set[str]:
        answer = world.server.request("GET", "/api/v1/resources", token=world.tokens[who])
        return {f"{r['owner']}/{r['name']}" for r in answer.json()}

    assert names("member") == names("owner") == {"team/m", "team/pc"}
    assert names("other") == set()
    assert names("resource-token") == {"team/m"}
    olive = world.server.request("GET", "/api/v1/users/me", token=world.tokens["owner"]).json()
    assert olive["groups"] == ["team"] and olive["group_admin_of"] == ["team"]


def test_failed_authentications_are_rate_limited_per_client(start_server: Any) -> None:
    server = start_server(auth_failures_per_minute=5)
    assert server.request("GET", "/api/v1/users/me").status_code == 200  # known to be good
    fresh = server.request("POST", "/api/v1/users", json={"name": "fresh"}).json()["token"]
    codes = [
        server.request("GET", "/api/v1/users/me", token="titan_wrong").status_code for _ in range(7)
    ]
    assert codes == [401] * 5 + [429] * 2
    refused = server.request("GET", "/api/v1/users/me", token="titan_wrong")
    assert int(refused.headers["Retry-After"]) > 0
    assert "too many failed authentications" in refused.json()["error"]["message"]
    # A token this server has found valid still passes: other clients on the address go on.
    assert server.request("GET", "/api/v1/users/me").status_code == 200
    # Any other token is a guess, and a limited client's guesses are not even checked:
    # a correct token never used before gets 429 like a wrong one.
    assert server.request("GET", "/api/v1/users/me", token=fresh).status_code == 429
