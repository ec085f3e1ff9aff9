"""Deployments without a server: the recipe's checks, replica names by revision, the
rolling update's steps, route matching and visibility, and the metrics' values."""

from __future__ import annotations

from typing import Any

import pytest

from service.config import DEFAULT_INSTANCE_TYPES
from service.core.identity.access import Principal, check_route
from service.core.workloads.processes import planned_processes
from service.core.workloads.replicas import Health, revision_in, rollout_step
from service.core.workloads.serving import Check, Counts, ServedRow, ServingTable
from service.errors import Forbidden, NotFound, Unauthenticated
from service.monitoring.deployment_metrics import values_between
from service.recipes.models import RecipeInvalid, parse_recipe


def deployment(**spec: Any) -> dict[str, Any]:
    return {"type": "deployment", "name": "web", "spec": {"command": "serve", **spec}}


def problems(data: Any) -> dict[str, str]:
    with pytest.raises(RecipeInvalid) as info:
        parse_recipe(data, DEFAULT_INSTANCE_TYPES)
    return {p["path"]: p["message"] for p in info.value.problems}


def test_a_deployment_recipe_has_defaults() -> None:
    recipe = parse_recipe(deployment())
    spec = recipe.spec  # type: ignore[union-attr]
    assert spec.scale == 1
    assert [(r.path, r.visibility) for r in spec.routes] == [("/", "owner")]
    assert spec.health_check.path == "/" and spec.health_check.failures == 3


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ({"routes": [{"path": "/", "visibility": "world"}]}, "spec.routes[0].visibility", "public"),
        ({"routes": [{"path": "api"}]}, "spec.routes[0].path", "start with '/'"),
        ({"routes": [{"path": "/a/../b"}]}, "spec.routes[0].path", "'..'"),
        ({"routes": [{"path": "/a"}, {"path": "/a/"}]}, "spec.routes", "more than one route"),
        ({"routes": []}, "spec.routes", "at least 1"),
        ({"scale": 0}, "spec.scale", "greater than or equal to 1"),
        ({"scale": 101}, "spec.scale", "less than or equal to 100"),
        ({"health_check": {"path": "healthz"}}, "spec.health_check.path", "start with '/'"),
        ({"health_check": {"failures": 0}}, "spec.health_check.failures", "greater"),
        ({"command": ""}, "spec.command", "non-empty"),
        ({"replicas": 2}, "spec.replicas", ""),
    ],
)
def test_bad_deployment_fields_are_named(spec: dict[str, Any], path: str, words: str) -> None:
    found = problems(deployment(**spec))
    assert path in found, found
    assert words in found[path]


def test_a_deployment_needs_a_command() -> None:
    assert "spec" in problems({"type": "deployment", "name": "web"})


def replicas(**spec: Any) -> list[str]:
    return list(planned_processes(parse_recipe(deployment(**spec)), DEFAULT_INSTANCE_TYPES))


def test_replicas_are_named_by_revision() -> None:
    two = replicas(scale=2)
    assert len(two) == 2 and all(n.startswith("replica-") for n in two)
    assert two[0].endswith("-0") and two[1].endswith("-1")
    assert len({revision_in(n) for n in two}) == 1
    # scale and routes change nothing a replica runs: same revision, nothing restarts
    three = replicas(scale=3, routes=[{"path": "/", "visibility": "public"}])
    assert three[:2] == two
    # a new command (or environment, size...) is a new revision
    changed = replicas(scale=2, command="serve --v2")
    assert not set(changed) & set(two)
    assert replicas(scale=2, environment_variables={"MODEL": "b"}) != two


NEW = ["replica-new-0", "replica-new-1"]
OLD = ["replica-old-0", "replica-old-1"]
H, U, F = Health.HEALTHY, Health.UNKNOWN, Health.FAILED


def test_a_fresh_deployment_starts_every_replica_at_once() -> None:
    step = rollout_step(NEW, [], {})
    assert step.run == tuple(NEW) and step.keep == () and "0 of 2" in step.waiting
    done = rollout_step(NEW, NEW, {n: H for n in NEW})
    assert done.run == tuple(NEW) and done.waiting == ""


def test_a_rolling_update_goes_one_replica_at_a_time() -> None:
    healthy_old = {n: H for n in OLD}
    step = rollout_step(NEW, OLD, healthy_old)  # one new replica starts; both old serve
    assert step.run == ("replica-new-0",) and step.keep == tuple(OLD)
    step = rollout_step(NEW, [*OLD, "replica-new-0"], healthy_old)  # not healthy yet
    assert step.run == ("replica-new-0",) and step.keep == tuple(OLD)
    assert "waiting for replica-new-0" in step.waiting
    health = {**healthy_old, "replica-new-0": H}
    step = rollout_step(NEW, [*OLD, "replica-new-0"], health)  # one old goes, next starts
    assert step.run == tuple(NEW) and len(step.keep) == 1
    health["replica-new-1"] = H
    step = rollout_step(NEW, [step.keep[0], *NEW], health)
    assert step.run == tuple(NEW) and step.keep == ()
    assert step.waiting == ""  # the last old one goes: the status stops saying "rolling out"


def test_an_unhealthy_old_replica_goes_first() -> None:
    health = {"replica-old-0": F, "replica-old-1": H, "replica-new-0": H}
    step = rollout_step(NEW, [*OLD, "replica-new-0"], health)
    assert step.failed == ("replica-old-0",) and step.keep == ("replica-old-1",)


def test_a_failing_new_replica_is_reported_and_the_old_ones_kept() -> None:
    health = {**{n: H for n in OLD}, "replica-new-0": F}
    step = rollout_step(NEW, [*OLD, "replica-new-0"], health)
    assert step.failed == ("replica-new-0",) and step.keep == tuple(OLD)


def test_a_failed_replica_is_replaced() -> None:
    step = rollout_step(NEW, NEW, {"replica-new-0": F, "replica-new-1": H})
    assert step.failed == ("replica-new-0",) and step.run == tuple(NEW)


def table_with(routes: list[tuple[str, str]], groups: frozenset[str] = frozenset()) -> ServingTable:
    table = ServingTable()
    replicas = [
        ("replica-a-0", "http://127.0.0.1:1", "t0"),
        ("replica-a-1", "http://127.0.0.1:2", "t0"),
    ]
    table.refresh([ServedRow("id1", "alice", "web", routes, groups, Check(), replicas)])
    return table


def test_the_longest_route_decides() -> None:
    served = table_with([("/", "owner"), ("/public", "public"), ("/public/admin", "owner")])
    served_ = served.find("alice", "web")
    assert served_ is not None
    assert served_.route_for("/public/x") == ("/public", "public")
    assert served_.route_for("/publicity") == ("/", "owner")
    assert served_.route_for("/public/admin/y") == ("/public/admin", "owner")
    only = table_with([("/v1", "public")]).find("alice", "web")
    assert only is not None and only.route_for("/v2") is None


def test_only_healthy_replicas_not_draining_are_picked_in_turn() -> None:
    table = table_with([("/", "owner")])
    served = table.find("alice", "web")
    assert served is not None
    assert table.pick(served) is None  # nothing has passed its health check yet
    for replica in served.replicas.values():
        replica.health = Health.HEALTHY
    picked = {table.pick(served).name for _ in range(4)}  # type: ignore[union-attr]
    assert picked == {"replica-a-0", "replica-a-1"}
    served.replicas["replica-a-0"].draining = True
    assert {table.pick(served).name for _ in range(3)} == {"replica-a-1"}  # type: ignore[union-attr]
    assert table.pick(served, avoid=["replica-a-1"]) is None
    # a refresh keeps what the checks learnt, unless the replica was started anew
    table.refresh(
        [
            ServedRow(
                "id1",
                "alice",
                "web",
                [("/", "owner")],
                frozenset(),
                Check(),
                [
                    ("replica-a-0", "http://127.0.0.1:1", "t0"),
                    ("replica-a-1", "http://127.0.0.1:2", "t1"),
                ],
            )
        ]
    )
    assert table.health("id1") == {"replica-a-0": Health.HEALTHY, "replica-a-1": Health.UNKNOWN}


def user(name: str, groups: frozenset[str] = frozenset(), admin: bool = False) -> Principal:
    return Principal(1, name, admin, groups=frozenset(groups))


@pytest.mark.parametrize(
    ("visibility", "caller", "outcome"),
    [
        ("public", None, None),
        ("account", None, Unauthenticated),
        ("account", user("bob"), None),
        ("group", user("bob"), NotFound),
        ("group", user("bob", {"ml"}), None),
        ("owner", user("bob", {"ml"}), NotFound),
        ("owner", user("alice"), None),
        ("owner", user("root", admin=True), None),
        ("owner", Principal(1, "alice", False, resource_id="r1"), Forbidden),
    ],
)
def test_visibility(visibility: str, caller: Principal | None, outcome: type | None) -> None:
    if outcome is None:
        check_route(caller, visibility, "alice", frozenset({"ml"}), "deployment 'web'")
    else:
        with pytest.raises(outcome):
            check_route(caller, visibility, "alice", frozenset({"ml"}), "deployment 'web'")


def test_a_group_owned_route_lets_its_members_in() -> None:
    check_route(user("bob", {"ml"}), "owner", "ml", frozenset({"ml"}), "deployment 'web'")


def test_metric_values_between_two_counts() -> None:
    before, now = Counts(), Counts()
    for seconds, error in [(0.004, False), (0.02, False), (0.2, True), (0.02, False)]:
        now.add(seconds, error)
    values = values_between(2.0, before, now)
    assert values["requests_per_second"] == 2.0 and values["errors_per_second"] == 0.5
    assert values["requests_total"] == 4 and values["errors_total"] == 1
    assert values["latency_ms"] == pytest.approx(61.0)
    assert values["latency_p95_ms"] == 250.0
    assert "latency_ms" not in values_between(1.0, now, now)  # no request: no latency


def test_health_checks_count_failures_after_the_start_period() -> None:
    import asyncio

    import httpx

    from service.core.control.health_checks import HealthChecker
    from service.core.workloads.serving import Replica

    answers = iter([500, 500, 200, 500, 500])
    woken: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/healthz"
        return httpx.Response(next(answers))

    async def checks() -> list[tuple[Health, int]]:
        checker = HealthChecker(None, ServingTable(), woken.append)  # type: ignore[arg-type]
        checker._http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        check = Check(path="/healthz", interval=0.2, failures=2, start_period=60)
        replica = Replica("replica-a-0", "http://127.0.0.1:9", "t0")
        seen = []
        for _ in range(5):
            await checker._check("id1", check, replica)
            seen.append((replica.health, replica.failures))
        await checker._http.aclose()
        return seen

    seen = asyncio.run(checks())
    # Failing within its start period counts nothing; once it passed, failures count:
    # the first makes it unknown (no traffic), the second (failures: 2) failed.
    assert seen == [
        (Health.UNKNOWN, 0),
        (Health.UNKNOWN, 0),
        (Health.HEALTHY, 0),
        (Health.UNKNOWN, 1),
        (Health.FAILED, 2),
    ]
    assert woken == ["id1"] * 3  # each change of health wakes the reconciler
