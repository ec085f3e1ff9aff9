"""A deployment as the console shows it: its routes' URLs and who may call them, each
replica's health check in words, and how its rollout stands (done, in progress, stopped
with the reason, none while stopped)."""

from __future__ import annotations

from typing import Any

from service.console.deployments import replica_row, rollout_of, routes_of
from service.core.workloads.replicas import Health
from service.core.workloads.serving import Replica

URL = "https://titan.example/deploy/alice/web/"


def view(target: str = "running", generation: int = 2) -> dict[str, Any]:
    return {"target": target, "generation": generation}


def replica(name: str, health: str | None) -> dict[str, Any]:
    return replica_row({"name": name, "health": health}, None)


def test_each_route_has_its_url_through_the_front_door_and_says_who_may_call_it() -> None:
    recipe = {
        "spec": {
            "routes": [
                {"path": "/", "visibility": "owner"},
                {"path": "/v1/predict", "visibility": "public"},
            ]
        }
    }
    routes = routes_of(recipe, URL)
    assert [r["url"] for r in routes] == [URL, URL + "v1/predict"]
    assert routes[1]["visibility"] == "public" and "without a token" in routes[1]["who"]
    # No routes given: the recipe's default (the owner's '/'); no URL before it runs.
    (default,) = routes_of({"spec": {}}, None)
    assert (default["path"], default["visibility"], default["url"]) == ("/", "owner", "")


def test_a_replicas_health_and_last_check_in_words() -> None:
    checked = Replica("replica-aaaa1111-0", "http://127.0.0.1:1", "t", next_check=1.0)
    checked.failures, checked.last_error = 2, "HTTP 500"
    row = replica_row({"name": "replica-aaaa1111-0", "health": "unknown"}, checked)
    assert row["revision"] == "aaaa1111" and row["failures"] == 2
    assert row["last_check"] == "failed: HTTP 500"
    assert (row["health_words"], row["health_badge"]) == ("not healthy yet: no traffic", "unknown")
    checked.failures, checked.last_error, checked.health = 0, "", Health.HEALTHY
    healthy = replica_row({"name": "replica-aaaa1111-0", "health": "healthy"}, checked)
    assert (healthy["last_check"], healthy["health_badge"]) == ("passed", "healthy")
    never = replica_row({"name": "replica-aaaa1111-1", "health": None}, None)
    assert never["last_check"] == "none yet" and never["health_badge"] == "none"
    assert replica_row({"name": "replica-aaaa1111-1", "health": "failed"}, None)[
        "health_words"
    ].startswith("unhealthy")


def test_a_rollout_in_progress_counts_new_healthy_and_old_left() -> None:
    replicas = [
        replica("replica-new00000-0", "healthy"),
        replica("replica-new00000-1", "unknown"),
        replica("replica-old00000-1", "healthy"),
    ]
    rollout = rollout_of(view(), "new00000", 2, replicas, [])
    assert rollout["state"] == "in progress"
    assert (rollout["new_healthy"], rollout["old_left"]) == (1, 1)
    assert rollout["old_revisions"] == ["old00000"]
    assert rollout["text"] == (
        "revision new00000 rolling out, 1 of 2 new replicas healthy, 1 old left"
    )


def test_a_rollout_is_done_once_every_new_replica_is_healthy_and_no_old_one_is_left() -> None:
    replicas = [replica("replica-new00000-0", "healthy"), replica("replica-new00000-1", "healthy")]
    rollout = rollout_of(view(), "new00000", 2, replicas, [])
    assert rollout["state"] == "done" and rollout["old_left"] == 0
    starting = rollout_of(view(), "new00000", 3, replicas, [])
    assert starting["state"] == "in progress" and "2 of 3 replicas healthy" in starting["text"]


def test_a_stopped_rollout_says_why_while_old_replicas_serve() -> None:
    reason = "rollout stopped: replica-new00000-0 failed its health check GET /healthz"
    history = [
        {"generation": 2, "reason": "rolling out: 0 of 2 replicas updated"},
        {"generation": 2, "reason": reason},
        {"generation": 1, "reason": "rollout stopped: an older one"},
    ]
    replicas = [replica("replica-old00000-0", "healthy"), replica("replica-old00000-1", "healthy")]
    rollout = rollout_of(view(), "new00000", 2, replicas, history)
    assert rollout["state"] == "stopped" and rollout["reason"] == reason
    assert "previous version keeps serving" in rollout["text"]
    # A stop recorded for an earlier generation says nothing of this one.
    assert rollout_of(view(), "new00000", 2, replicas, history[2:])["state"] == "in progress"
    stopped = rollout_of(view("stopped"), "new00000", 2, [], history)
    assert (stopped["state"], stopped["text"]) == ("none", "the deployment is stopped")
