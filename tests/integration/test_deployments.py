"""Deployments on a real server with the local backend and real replica processes
(tests/integration/deploy_app.py): health gating, balancing, replacement, rolling
updates and rollbacks under steady load, visibility, and metrics."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RunningServer
from tests.integration.test_cli import titan
from tests.integration.test_restart_safety import running_server_process
from tests.steady_load import SteadyLoad
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
APP = Path(__file__).with_name("deploy_app.py")


def recipe(version: str = "v1", *flags: str, scale: int = 2, **spec: Any) -> dict[str, Any]:
    command = f'exec "$TITAN_PYTHON" {APP} {version} {" ".join(flags)}'.strip()
    return {
        "type": "deployment",
        "name": "web",
        "spec": {
            "command": command,
            "scale": scale,
            "health_check": {"path": "/healthz", "interval": 0.3, "failures": 2, "start_period": 8},
            **spec,
        },
    }


def user(server: RunningServer, name: str) -> str:
    """A new user's token."""
    answer: dict[str, Any] = server.hub().send_json("POST", "/api/v1/users", {"name": name})
    return str(answer["token"])


def get(server: RunningServer, path: str, token: str | None, **kw: Any) -> httpx.Response:
    return server.request("GET", path, token=token or "", **kw)


def serving(server: RunningServer, token: str, versions: set[str], replicas: int) -> bool:
    """Whether ``replicas`` different replicas answer, all of ``versions``."""
    seen: dict[str, str] = {}
    for _ in range(4 * replicas):
        answer = get(server, "/deploy/alice/web/", token)
        if answer.status_code != 200:
            return False
        body = answer.json()
        seen[body["replica"]] = body["version"]
    return len(seen) == replicas and set(seen.values()) == versions


def _predict(client: httpx.Client, count: int) -> httpx.Response:
    """Reads and changes in turn."""
    if count % 2:
        return client.get("/deploy/alice/web/predict", params={"n": count})
    return client.post("/deploy/alice/web/predict", content=str(count))


def steady_load(server: RunningServer, token: str) -> SteadyLoad:
    """Steady GETs and POSTs to alice's deployment 'web', counted by app version."""
    return SteadyLoad(server.url, token, _predict, lambda answer: answer.json()["version"])


def test_traffic_waits_for_health_then_is_balanced_and_relayed(server: RunningServer) -> None:
    alice = user(server, "alice")
    hub = server.hub(alice)
    hub.apply(recipe("v1", "--delay", "2"))
    # Replicas start, but answer nothing until their health check passes.
    early = get(server, "/deploy/alice/web/", alice)
    assert early.status_code == 503, early.text
    assert "no healthy replica" in early.json()["error"]["message"]
    assert early.headers["Retry-After"]
    running = hub.wait("deployment/web", {"running"}, timeout=120)
    assert running["endpoints"]["url"] == f"{server.settings.api_url}/deploy/alice/web/"
    assert len([p for p in running["processes"] if p["name"].startswith("replica-")]) == 2
    wait_for(lambda: serving(server, alice, {"v1"}, 2), timeout=60)
    # Method, path, query and body are relayed; the caller's token never reaches the app.
    echoed = server.request(
        "POST", "/deploy/alice/web/v1/predict?x=1&y=2", token=alice, content=b'{"a": 1}'
    ).json()
    assert echoed["method"] == "POST" and echoed["path"] == "/v1/predict"
    assert echoed["query"] == "x=1&y=2" and echoed["body"] == '{"a": 1}'
    assert echoed["user"] == "alice" and echoed["authorization"] is None
    # Its pages share the console's origin: they run sandboxed, set no cookie there, and
    # never see the caller's cookies.
    cookies = {"Cookie": "titan_session=the-callers-session; other=x"}
    seen = get(server, "/deploy/alice/web/echo", alice, headers=cookies)
    assert seen.json()["cookie"] is None
    planted = get(server, "/deploy/alice/web/cookie", alice)
    assert planted.status_code == 200 and "set-cookie" not in planted.headers
    policy = planted.headers["content-security-policy"]
    assert policy.startswith("sandbox ") and "allow-same-origin" not in policy
    # Round robin: 10 requests reach both replicas, about evenly.
    answers = [get(server, "/deploy/alice/web/", alice) for _ in range(10)]
    replicas = Counter(answer.json()["replica"] for answer in answers)
    assert sorted(replicas.values()) == [5, 5], replicas


def test_a_replica_that_never_passes_its_health_check_gets_no_traffic(
    server: RunningServer,
) -> None:
    alice = user(server, "alice")
    hub = server.hub(alice)
    hub.apply(recipe("v1", "--never-healthy", scale=1))
    wait_for(lambda: hub.get("deployment/web")["status"] in ("starting", "degraded"), timeout=60)
    for _ in range(5):
        answer = get(server, "/deploy/alice/web/", alice)
        assert answer.status_code == 503, answer.text
        time.sleep(0.3)
    # Once its start period is over, it fails and is replaced, saying why.
    history = wait_for(
        lambda: [e for e in hub.history("deployment/web") if "failed its" in e["reason"]],
        timeout=60,
    )
    assert "GET /healthz" in history[0]["reason"] and "HTTP 500" in history[0]["reason"]


def test_an_unhealthy_or_exited_replica_is_replaced(server: RunningServer) -> None:
    alice = user(server, "alice")
    hub = server.hub(alice)
    hub.apply(recipe("v1"))
    hub.wait("deployment/web", {"running"}, timeout=120)
    wait_for(lambda: serving(server, alice, {"v1"}, 2), timeout=60)
    first = {p["name"]: p["started_at"] for p in hub.get("deployment/web")["processes"]}
    # One replica's health check starts failing: it is taken out and replaced.
    sick = server.request("POST", "/deploy/alice/web/sicken", token=alice).json()["replica"]
    assert sick
    for _ in range(10):  # from now on only the healthy one answers (or the sick one, once)
        get(server, "/deploy/alice/web/", alice)

    def replaced() -> bool:
        now = {p["name"]: p["started_at"] for p in hub.get("deployment/web")["processes"]}
        return len(now) == 2 and any(now.get(n) != t for n, t in first.items())

    wait_for(replaced, timeout=60)
    wait_for(lambda: serving(server, alice, {"v1"}, 2), timeout=60)
    reasons = " ".join(e["reason"] for e in hub.history("deployment/web"))
    assert "failed its health check GET /healthz" in reasons
    # A replica that exits is replaced too.
    before = {p["name"]: p["started_at"] for p in hub.get("deployment/web")["processes"]}
    server.request("POST", "/deploy/alice/web/exit", token=alice)
    first = before
    wait_for(replaced, timeout=60)
    wait_for(lambda: serving(server, alice, {"v1"}, 2), timeout=60)


def test_a_rolling_update_and_a_rollback_fail_no_request(server: RunningServer) -> None:
    alice = user(server, "alice")
    hub = server.hub(alice)
    hub.apply(recipe("v1"))
    hub.wait("deployment/web", {"running"}, timeout=120)
    wait_for(lambda: serving(server, alice, {"v1"}, 2), timeout=60)
    with steady_load(server, alice) as load:
        wait_for(lambda: load.versions["v1"] > 20, timeout=30)
        hub.apply(recipe("v2", "--delay", "1"))  # a new version: rolled out one by one
        wait_for(lambda: serving(server, alice, {"v2"}, 2), timeout=120, every=1)
        assert load.failures == [], load.failures[:5]
        settled = hub.wait("deployment/web", {"running"}, generation=2, timeout=60)
        names = [p["name"] for p in settled["processes"]]
        assert len(names) == 2, names
        # Back to v1: as a new generation, rolled out the same way.
        back = hub.rollback("deployment/web")  # the Python client
        assert back["action"] == "updated" and back["resource"]["generation"] == 3
        wait_for(lambda: serving(server, alice, {"v1"}, 2), timeout=120, every=1)
        count = load.answered()
        wait_for(lambda: load.answered() > count + 20, timeout=30)
    assert load.failures == [], load.failures[:5]
    assert load.versions["v1"] > 0 and load.versions["v2"] > 0
    history = [e["reason"] for e in hub.history("deployment/web")]
    assert any("rolling out" in reason for reason in history), history


def test_a_failing_new_version_stops_its_rollout_and_the_old_one_serves(
    server: RunningServer,
) -> None:
    alice = user(server, "alice")
    hub = server.hub(alice)
    hub.apply(recipe("v1"))
    hub.wait("deployment/web", {"running"}, timeout=120)
    wait_for(lambda: serving(server, alice, {"v1"}, 2), timeout=60)
    with steady_load(server, alice) as load:
        hub.apply(recipe("v2", "--never-healthy"))
        degraded = wait_for(
            lambda: [e for e in hub.history("deployment/web") if "rollout stopped" in e["reason"]],
            timeout=90,
        )
        reason = degraded[0]["reason"]
        assert "replica-" in reason and "GET /healthz" in reason, reason
        assert "2 replica(s) of the previous version keep serving" in reason
        assert serving(server, alice, {"v1"}, 2)
    assert load.failures == [], load.failures[:5]
    assert set(load.versions) == {"v1"}
    # Rolling back to v1 (the CLI) ends the rollout: the old replicas are the recipe's again.
    env = {"TITAN_TOKEN": alice}
    back = titan(server, "rollback", "deployment/web", "--wait", "--timeout", "60", env=env)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "generation 3" in back.stdout
    running = hub.get("deployment/web")
    assert running["observed_generation"] == 3 and len(running["processes"]) == 2
    assert serving(server, alice, {"v1"}, 2)
    shown = titan(server, "get", "deployment/web", env=env)
    assert "replicas: 2/2 healthy" in shown.stdout and "healthy" in shown.stdout, shown.stdout
    assert f"url: {server.settings.api_url}/deploy/alice/web/" in shown.stdout
    listed = titan(server, "ls", env=env).stdout
    assert "deployment/web" in listed and "2/2" in listed, listed


def test_rollback_without_a_previous_recipe_is_refused(server: RunningServer) -> None:
    alice = user(server, "alice")
    server.hub(alice).apply(recipe("v1", scale=1))
    answer = server.request("POST", "/api/v1/resources/deployment/web/rollback", token=alice)
    assert answer.status_code == 409, answer.text
    assert "no previous recipe" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("visibility", "owner", "member", "other", "anonymous"),
    [
        ("owner", 200, 404, 404, 401),
        ("group", 200, 200, 404, 401),
        ("account", 200, 200, 200, 401),
        ("public", 200, 200, 200, 200),
    ],
)
def test_visibility(
    server: RunningServer, visibility: str, owner: int, member: int, other: int, anonymous: int
) -> None:
    alice, bob, carol = user(server, "alice"), user(server, "bob"), user(server, "carol")
    admin = server.hub()
    admin.send_json("POST", "/api/v1/groups", {"name": "ml"})
    for name in ("alice", "bob"):
        admin.send_json("PUT", f"/api/v1/groups/ml/members/{name}", {"role": "member"})
    routes = [{"path": "/", "visibility": visibility}, {"path": "/healthz", "visibility": "public"}]
    server.hub(alice).apply(recipe("v1", scale=1, routes=routes))
    wait_for(lambda: get(server, "/deploy/alice/web/", alice).status_code == 200, timeout=120)
    for token, status in [(alice, owner), (bob, member), (carol, other), ("", anonymous)]:
        answer = get(server, "/deploy/alice/web/x", token)
        assert answer.status_code == status, (token, answer.text)
        if status != 200:
            assert answer.json()["error"]["message"]
    assert get(server, "/deploy/alice/web/x", server.token).status_code == 200  # an admin
    assert get(server, "/deploy/alice/web/healthz", "").status_code == 200  # its own route
    bad = get(server, "/deploy/alice/web/", "not-a-token")
    assert bad.status_code == 401
    assert get(server, "/deploy/alice/nothing/", alice).status_code == 404


def test_requests_errors_and_latency_reach_the_store_and_metrics(
    start_server: Any,
) -> None:
    server = start_server(deployment_metrics_seconds=0.5)
    alice = user(server, "alice")
    hub = server.hub(alice)
    hub.apply(recipe("v1", scale=1))
    wait_for(lambda: get(server, "/deploy/alice/web/", alice).status_code == 200, timeout=120)
    for _ in range(20):
        assert get(server, "/deploy/alice/web/p", alice).status_code == 200

    def requests_total() -> float:
        text = server.request("GET", "/metrics", token=alice).text
        rows = [
            row
            for row in text.splitlines()
            if row.startswith("titan_requests_total{") and 'resource="alice/deployment/web"' in row
        ]
        return float(rows[0].rsplit(" ", 1)[1]) if rows else 0.0

    assert wait_for(lambda: requests_total() >= 20, timeout=30)

    def latency_shown() -> bool:  # an interval without requests has no latency: send one
        assert get(server, "/deploy/alice/web/p", alice).status_code == 200
        text = server.request("GET", "/metrics", token=alice).text
        return "titan_latency_ms{" in text and "titan_latency_p95_ms{" in text

    assert wait_for(latency_shown, timeout=30, every=0.2)
    admin = server.request("GET", "/metrics").text
    assert 'titan_deployment_requests_total{deployment="alice/web",outcome="ok"}' in admin
    assert "titan_deployment_request_seconds_bucket" in admin
    # And in the monitoring store, as telemetry of the deployment.
    query = server.request(
        "GET",
        "/api/v1/resources/deployment/web/telemetry",
        token=alice,
        params={"metric": "requests_total", "from": "-5m"},
    )
    assert query.status_code == 200, query.text
    assert "deploy:front_door" in query.text


def test_after_kill_9_of_the_control_plane_the_replicas_serve_again(tmp_path: Path) -> None:
    with running_server_process(tmp_path / "data") as process:
        hub = process.start()
        hub.apply(recipe("v1"))
        hub.wait("deployment/web", {"running"}, generation=1, timeout=120)
        auth = {"Authorization": f"Bearer {hub.token}"}
        url = f"{process.url}/deploy/admin/web/"

        def both_serve() -> bool:
            answers = [httpx.get(url, headers=auth, timeout=30) for _ in range(6)]
            return all(a.status_code == 200 for a in answers) and (
                len({a.json()["replica"] for a in answers}) == 2
            )

        wait_for(both_serve, timeout=60)
        before = {p["name"]: p["started_at"] for p in hub.get("deployment/web")["processes"]}
        process.kill()
        hub = process.start()
        wait_for(both_serve, timeout=60)  # once their health checks pass again
        after = {p["name"]: p["started_at"] for p in hub.get("deployment/web")["processes"]}
        assert after == before  # adopted, not restarted
