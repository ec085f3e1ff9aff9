"""The MLOps loop's training half on a real server (local backend): the nightly recipe,
run now, publishes a model to the shared folder that the serving app loads and answers with.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xgboost

from tests.integration.conftest import RunningServer
from tests.waiting import wait_for
from workers.model_folder import versions

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).parents[2] / "recipes" / "train-xgboost-nightly.json"
SERVE = RECIPE.with_name("serve-xgboost.json")  # a deployment: started by hand here
ENDED = {"succeeded", "failed", "timed_out", "lost", "stopped", "skipped", "missed"}


@pytest.fixture
def serving_app(tmp_path: Path) -> Iterator[Any]:
    """Start the serving app as serve-xgboost.json's command does, in a replica's folder
    where the local backend links the 'models' folder, on a free loopback port; its URL.
    Stopped (SIGTERM) after; its log is printed."""
    started: list[subprocess.Popen[str]] = []
    log_path = tmp_path / "serving.log"

    def start(model_dir: Path) -> str:
        command = json.loads(SERVE.read_text())["spec"]["command"]
        assert command.startswith('python -m workers.serving.xgboost_server --port "$PORT"')
        command = command.replace("python", shlex.quote(sys.executable), 1)
        command += " --reload-seconds 0.5"
        replica = tmp_path / "replica"
        replica.mkdir()
        (replica / "models").symlink_to(model_dir, target_is_directory=True)
        env = {**os.environ, "PORT": "0", "PYTHONPATH": str(Path(__file__).parents[2])}
        with log_path.open("w") as log:
            app = subprocess.Popen(
                ["sh", "-c", f"exec {command}"],
                cwd=replica,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        started.append(app)

        def listening() -> str | None:
            found = re.search(r"listening on (http://\S+),", log_path.read_text())
            assert app.poll() is None, log_path.read_text()
            return found.group(1) if found else None

        return str(wait_for(listening, timeout=60, every=0.2))

    yield start
    for app in started:
        app.terminate()
        assert app.wait(timeout=30) == 0  # SIGTERM is a clean stop
    if log_path.exists():
        print(log_path.read_text())


def test_the_nightly_job_publishes_a_model_the_serving_app_answers_with(
    server: RunningServer, serving_app: Any
) -> None:
    made = server.request("POST", "/api/v1/folders", json={"name": "models"})
    assert made.status_code == 201, made.text
    recipe = json.loads(RECIPE.read_text())
    assert recipe["spec"]["command"][:3] == ["python", "-m", "workers.training"]
    recipe["spec"]["command"][0] = sys.executable  # the interpreter Titan is installed in
    hub = server.hub()
    hub.apply(recipe)
    ref = "job/train-xgboost-nightly"
    assert hub.get(ref)["status"] == "stopped"  # it waits for its schedule (03:00 Berlin)

    number = hub.run(ref)["number"]  # `titan run job/train-xgboost-nightly`

    def ended() -> dict[str, Any] | None:
        return next(
            (r for r in hub.runs(ref) if r["number"] == number and r["status"] in ENDED), None
        )

    run = wait_for(ended, timeout=300)
    text = hub.logs(ref, job_run=number)["processes"]["job"]["text"]
    assert (run["trigger"], run["status"]) == ("manual", "succeeded"), text
    result = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])

    folder = server.settings.folders_dir / "admin" / "models"
    [version] = versions(folder)
    assert result["version"] == version.name
    assert sorted(p.name for p in version.folder.iterdir()) == ["metadata.json", "model.json"]
    metadata = version.metadata()
    assert metadata["version"] == version.name and metadata["features"] == {"count": 20}
    assert metadata["metric"]["name"] == "rmse"
    assert metadata["metric"]["value"] == result["rmse"] < result["baseline_rmse"] / 2
    assert metadata["source"] == {"resource": "admin/job/train-xgboost-nightly", "run": str(number)}
    assert metadata["training"]["rows"] == 50_000 and metadata["training"]["device"] == "cpu"

    url = serving_app(folder)

    def healthy() -> dict[str, Any] | None:
        answer = httpx.get(url + "/healthz")
        return answer.json() if answer.status_code == 200 else None  # type: ignore[no-any-return]

    assert wait_for(healthy, timeout=60)["model_version"] == version.name
    described = httpx.get(url + "/model").json()
    assert described["model_dir"].endswith("/replica/models")  # the link, for /models
    assert described["metadata"] == metadata
    rows = np.random.default_rng(5).normal(size=(10, 20)).astype(np.float32)
    answer = httpx.post(url + "/predict", json={"instances": rows.tolist()})
    assert answer.status_code == 200, answer.text
    booster = xgboost.Booster(model_file=str(version.model_file))
    expected = [float(v) for v in booster.predict(xgboost.DMatrix(rows))]
    assert answer.json() == {"predictions": expected, "model_version": version.name}
    wrong = httpx.post(url + "/predict", json={"instances": [[1.0] * 19]})
    assert wrong.status_code == 400 and "the model takes 20 features" in wrong.text
