"""The MLOps loop end to end on a real server (local backend), as the README walks it:
the nightly training job, run now, publishes a model to the shared folder 'models';
serve-xgboost.json runs as a deployment answering predictions through the front door
for any signed-in user; its requests reach its telemetry, `titan top` and /metrics; a
new model is rolled out replica by replica and rolled back with `titan rollback`, under
a steady stream of requests none of which fails.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost

from tests.integration.conftest import RunningServer, ServerFactory
from tests.integration.test_cli import titan
from tests.steady_load import SteadyLoad
from tests.waiting import wait_for
from workers.model_folder import ModelVersion, versions

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).parents[2] / "recipes"
TRAIN = "job/train-xgboost-nightly"
SERVE = "deployment/serve-xgboost"
PREDICT = "/deploy/admin/serve-xgboost/predict"  # the front door: /deploy/<owner>/<name>/<path>
ENDED = {"succeeded", "failed", "timed_out", "lost", "stopped", "skipped", "missed"}
ROWS = np.random.default_rng(5).normal(size=(10, 20)).astype(np.float32)


def with_this_python(command: str) -> str:
    """The recipe's shell command run by the interpreter Titan is installed in (the
    image's ``python``, here)."""
    assert command.startswith("python -m workers.serving.xgboost_server "), command
    return shlex.quote(sys.executable) + command.removeprefix("python")


def serve_recipe(pinned: str | None = None) -> dict[str, Any]:
    """recipes/serve-xgboost.json, its command pinned to a model version if given."""
    recipe: dict[str, Any] = json.loads((RECIPES / "serve-xgboost.json").read_text())
    spec = recipe["spec"]
    assert spec["command"] == (
        'python -m workers.serving.xgboost_server --host "$TITAN_BIND_HOST" --port "$PORT" '
        "--model-dir /models"
    )
    assert (spec["scale"], spec["routes"]) == (2, [{"path": "/", "visibility": "account"}])
    spec["command"] = with_this_python(spec["command"])
    if pinned:
        spec["command"] += f" --model-version {pinned}"  # as the README says to pin one
    return recipe


def train(server: RunningServer) -> ModelVersion:
    """`titan run job/train-xgboost-nightly`, waited for: the version it published."""
    hub = server.hub()
    number = hub.run(TRAIN)["number"]

    def ended() -> dict[str, Any] | None:
        runs = hub.runs(TRAIN)
        return next((r for r in runs if r["number"] == number and r["status"] in ENDED), None)

    run = wait_for(ended, timeout=300)
    text = hub.logs(TRAIN, job_run=number)["processes"]["job"]["text"]
    assert (run["trigger"], run["status"]) == ("manual", "succeeded"), text
    result = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
    version = versions(server.settings.folders_dir / "admin" / "models")[-1]
    assert result["version"] == version.name
    metadata = version.metadata()
    assert metadata["source"] == {"resource": f"admin/{TRAIN}", "run": str(number)}
    assert metadata["metric"]["value"] == result["rmse"] < result["baseline_rmse"] / 2
    return version


def predictions(version: ModelVersion) -> list[float]:
    """What ``version`` predicts for ROWS, computed here."""
    booster = xgboost.Booster(model_file=str(version.model_file))
    return [float(v) for v in booster.predict(xgboost.DMatrix(ROWS))]


def serves(server: RunningServer, token: str, version: ModelVersion, calls: int = 8) -> bool:
    """Whether ``calls`` predictions (round robin: every replica) all come from ``version``."""
    expected = {"predictions": predictions(version), "model_version": version.name}
    answers = [
        server.request("POST", PREDICT, token=token, json={"instances": ROWS.tolist()})
        for _ in range(calls)
    ]
    return all(a.status_code == 200 and a.json() == expected for a in answers)


def steady_load(server: RunningServer, token: str) -> SteadyLoad:
    """Predictions sent one after another, 20 ms apart (steady, not a flood: the machine
    also trains and rolls out), counted by the model version answering."""
    body = {"instances": ROWS[:2].tolist()}
    return SteadyLoad(
        server.url,
        token,
        lambda client, _count: client.post(PREDICT, json=body),
        lambda answer: str(answer.json()["model_version"]),
        pause=0.02,
    )


def replicas(server: RunningServer) -> set[str]:
    """The names of the deployment's replicas now."""
    return {p["name"] for p in server.hub().get(SERVE)["processes"]}


def rolled_out(
    server: RunningServer, load: SteadyLoad, before: set[str], version: ModelVersion
) -> None:
    """Wait until new replicas have replaced every one of ``before``, all healthy, the
    rollout done, and they serve ``version`` while the load goes on; no request failed."""
    hub = server.hub()

    def done() -> dict[str, Any] | None:
        now = hub.get(SERVE)
        names = {p["name"] for p in now["processes"]}
        settled = (
            now["status"] == "running"
            and not now["status_reason"].startswith("rolling out")
            and len(names) == 2
            and names.isdisjoint(before)
            and all(p["health"] == "healthy" for p in now["processes"])
        )
        return now if settled else None

    try:
        wait_for(done, timeout=180, every=1)
    except AssertionError as exc:
        now = hub.get(SERVE)
        state = [(p["name"], p["state"], p["health"]) for p in now["processes"]]
        where = f"{now['status']}: {now['status_reason']} {state}"
        raise AssertionError(f"not rolled out: {where}") from exc
    assert wait_for(lambda: serves(server, load.token, version), timeout=30)
    count = load.answered()
    wait_for(lambda: load.answered() > count + 10, timeout=60)
    assert load.failures == [], load.failures[:5]


def front_door_metric(server: RunningServer, metric: str) -> float:
    """The deployment's newest ``metric`` on /metrics ("titan_<metric>{...}"); 0 if none."""
    text = server.request("GET", "/metrics").text
    rows = [
        row
        for row in text.splitlines()
        if row.startswith(f"titan_{metric}{{") and f'resource="admin/{SERVE}"' in row
    ]
    return float(rows[0].rsplit(" ", 1)[1]) if rows else 0.0


def test_train_serve_watch_roll_out_and_roll_back(start_server: ServerFactory) -> None:
    server = start_server(deployment_metrics_seconds=1)
    hub = server.hub()
    bob = str(hub.send_json("POST", "/api/v1/users", {"name": "bob"})["token"])

    # 1. A folder for the models, and the nightly job: one run now publishes a model.
    made = server.request("POST", "/api/v1/folders", json={"name": "models"})
    assert made.status_code == 201, made.text
    recipe = json.loads((RECIPES / "train-xgboost-nightly.json").read_text())
    assert recipe["spec"]["command"][:3] == ["python", "-m", "workers.training"]
    recipe["spec"]["command"][0] = sys.executable  # the interpreter Titan is installed in
    hub.apply(recipe)
    assert hub.get(TRAIN)["status"] == "stopped"  # it waits for its schedule (03:00 Berlin)
    first = train(server)

    # 2-3. Deploy the recipe as shipped: it serves the newest version once healthy.
    assert hub.apply(serve_recipe())["action"] == "created"
    running = hub.wait(SERVE, {"running"}, generation=1, timeout=180)
    assert running["endpoints"]["url"] == f"{server.settings.api_url}/deploy/admin/serve-xgboost/"
    assert running["workers"] == {"ready": 2, "wanted": 2}, running

    # 4. Called with a token: any signed-in user (visibility account); no one else.
    assert wait_for(lambda: serves(server, bob, first), timeout=30)
    anonymous = server.request("POST", PREDICT, token="", json={"instances": ROWS.tolist()})
    assert anonymous.status_code == 401, anonymous.text
    model = server.request("GET", "/deploy/admin/serve-xgboost/model", token=bob).json()
    assert model["model_version"] == first.name and model["metadata"] == first.metadata()
    assert model["follows"] == "newest version"
    wrong = server.request("POST", PREDICT, token=bob, json={"instances": [[1.0] * 19]})
    assert wrong.status_code == 400 and "the model takes 20 features" in wrong.text

    # 5. Watch it: requests reach its telemetry, `titan top` and /metrics.
    assert serves(server, bob, first, calls=20)
    assert wait_for(lambda: front_door_metric(server, "requests_total") >= 20, timeout=30)
    telemetry = hub.telemetry(SERVE, "requests_total", start="-5m", agg="max")
    [series] = [s for s in telemetry["series"] if s["source"] == "deploy:front_door"]
    assert max(value for _, value in series["points"]) >= 20, telemetry
    admin_metrics = server.request("GET", "/metrics").text
    assert 'titan_deployment_requests_total{deployment="admin/serve-xgboost",outcome="ok"}' in (
        admin_metrics
    )
    top = titan(server, "top", "--once", env={"COLUMNS": "200"})
    assert top.returncode == 0, top.stderr
    assert f"admin/{SERVE}" in top.stdout and "front door" in top.stdout, top.stdout

    with steady_load(server, bob) as load:
        # 6. Pin the version served, then roll out the next night's model by its version.
        before = replicas(server)
        hub.apply(serve_recipe(pinned=first.name))
        rolled_out(server, load, before, first)
        second = train(server)  # the next nightly run
        assert second.name != first.name
        assert serves(server, bob, first)  # pinned: a new version is not served by itself
        before = replicas(server)
        newer = hub.apply(serve_recipe(pinned=second.name))["resource"]["generation"]
        rolled_out(server, load, before, second)
        assert load.versions[first.name] > 0 and load.versions[second.name] > 0

        # ...and roll back: the previous recipe, so the previous model, the same way.
        before = replicas(server)
        back = titan(server, "rollback", SERVE, "--wait", "--timeout", "180", timeout=240)
        assert back.returncode == 0, back.stdout + back.stderr
        assert f"generation {newer + 1}" in back.stdout, back.stdout
        rolled_out(server, load, before, first)
    assert load.failures == [], load.failures[:5]
    history = [event["reason"] for event in hub.history(SERVE)]
    assert any("rolling out" in reason for reason in history), history
