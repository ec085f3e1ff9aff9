"""Telemetry end to end: real processes sample, the server stores, queries and exports."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from tests.integration.conftest import RunningServer, fake_backend_server
from tests.integration.test_api import make_user
from tests.integration.test_cli import titan
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def sources(server: RunningServer, name: str) -> dict[str, dict[str, Any]]:
    """The newest reading of each source of one resource, from the API."""
    for resource in server.hub().current():
        if resource["name"] == name:
            return {s["source"]: s for s in resource["sources"]}
    return {}


def test_samples_from_a_cluster_reach_queries_top_and_metrics(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "c", "spec": {"n_workers": 1}})
    running = hub.wait("cluster/c", {"running"}, timeout=90)
    with Client(
        running["endpoints"]["scheduler"], security=hub.cluster_security("cluster/c"), timeout="30s"
    ) as client:
        client.wait_for_workers(1, timeout=60)
        assert sum(client.gather(client.map(lambda x: x + 1, range(20)))) == 210

    def sampled() -> dict[str, dict[str, Any]] | None:
        found = sources(server, "c")
        done = found.get("dask:scheduler", {}).get("values", {})
        wanted = {"host:scheduler", "host:worker-0", "dask:scheduler"}
        return found if wanted <= set(found) and done["dask_tasks_completed_total"] >= 20 else None

    found = wait_for(sampled)
    worker = found["host:worker-0"]
    assert worker["process"] == "worker-0" and worker["values"]["process_memory_bytes"] > 0
    assert found["dask:scheduler"]["values"]["dask_workers"] == 1

    series = hub.telemetry("cluster/c", "host_cpu_percent", step=1)
    assert series["resolution"] == "raw" and series["resource"] == "admin/cluster/c"
    by_source = {s["source"]: s["points"] for s in series["series"]}
    assert {"host:scheduler", "host:worker-0"} <= set(by_source)
    assert all(0 <= value <= 100 for _, value in by_source["host:worker-0"])
    assert len(by_source["host:worker-0"]) >= 2  # one sample a second
    # The last hour (the console's charts) reads raw samples: no wait for a minute's rollup.
    path = "/api/v1/resources/cluster/c/telemetry?metric=host_cpu_percent&from=-1h"
    hour = server.request("GET", path).json()
    assert hour["resolution"] == "raw" and hour["to"] - hour["from"] == 3600
    assert {s["source"] for s in hour["series"]} >= {"host:scheduler", "host:worker-0"}

    metrics = server.request("GET", "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'titan_host_cpu_percent{gpu="",name="c",owner="admin",process="worker-0"' in text
    assert 'titan_resources{status="running",type="cluster"} 1.0' in text
    assert "titan_reconcile_seconds_count" in text and "titan_reconcile_queue_depth" in text
    assert 'titan_api_request_seconds_count{method="GET",route="/api/v1/telemetry/current"' in text

    top = titan(server, "top", "--once", env={"COLUMNS": "200"})
    assert top.returncode == 0, top.stderr
    assert "admin/cluster/c" in top.stdout and "worker-0" in top.stdout

    bob = make_user(server, "bob")
    assert "admin/cluster/c" not in server.request("GET", "/metrics", token=bob).text
    assert "titan_resources" not in server.request("GET", "/metrics", token=bob).text
    hidden = server.request(
        "GET",
        "/api/v1/resources/cluster/c/telemetry",
        token=bob,
        params={"metric": "host_cpu_percent", "owner": "admin"},
    )
    assert hidden.status_code == 404


POSTER = """
import json, os, time, httpx
api = httpx.Client(base_url=os.environ["TITAN_URL"],
                   headers={"Authorization": "Bearer " + os.environ["TITAN_TOKEN"]})
sample = {"time": time.time(), "source": "host:poster", "values": {"host_cpu_percent": 1.0}}
codes = {
    "own": api.post("/api/v1/telemetry",
                    json={"resource": os.environ["TITAN_RESOURCE"], "samples": [sample],
                          "process": "poster", "dropped": 7}),
    "other": api.post("/api/v1/telemetry",
                      json={"resource": "admin/job/other", "samples": [sample]}),
    "malformed": api.post("/api/v1/telemetry",
                          json={"samples": [{**sample, "values": {"Bad Name": "x"}}]}),
    "future": api.post("/api/v1/telemetry",
                       json={"samples": [{**sample, "time": time.time() + 3600}]}),
}
print("CODES", json.dumps({k: [r.status_code, r.json()] for k, r in codes.items()}))
"""


def test_a_resource_token_sends_samples_for_its_own_resource_only(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "job", "name": "other", "spec": {"command": "sleep 60"}})
    hub.apply(
        {"type": "job", "name": "poster", "spec": {"command": [sys.executable, "-c", POSTER]}}
    )
    hub.wait("job/poster", {"succeeded"}, timeout=90)
    output = hub.logs("job/poster")["processes"]["job"]["text"]
    codes = json.loads(output.split("CODES ", 1)[1].splitlines()[0])
    assert codes["own"] == [202, {"accepted": 1}]
    assert codes["other"][0] == 403
    assert "were sent with the token of 'admin/job/poster'" in codes["other"][1]["error"]["message"]
    assert codes["malformed"][0] == 422
    paths = {p["path"] for p in codes["malformed"][1]["error"]["details"]}
    assert any("values" in path for path in paths), paths
    assert (
        codes["future"][0] == 422
        and "ahead of the server" in codes["future"][1]["error"]["message"]
    )

    dropped = (
        'titan_telemetry_dropped_samples_total{process="poster",resource="admin/job/poster"} 7.0'
    )
    assert dropped in server.request("GET", "/metrics").text

    bob = make_user(server, "bob")
    sample = {"time": time.time(), "source": "host:x", "values": {"v": 1.0}}
    refused = server.request("POST", "/api/v1/telemetry", token=bob, json={"samples": [sample]})
    assert refused.status_code == 403 and "resource's own token" in refused.text
    stored = hub.telemetry("job/poster", "host_cpu_percent", start=time.time() - 600, step=1)
    assert any(s["source"] == "host:poster" for s in stored["series"])


def test_the_cpu_training_job_runs_end_to_end_with_its_telemetry(server: RunningServer) -> None:
    hub = server.hub()
    recipe = json.loads(
        (Path(__file__).parents[2] / "recipes" / "train-xgboost-cpu.json").read_text()
    )
    assert recipe["spec"]["command"][:3] == ["python", "-m", "workers.training"]
    recipe["spec"]["command"][0] = sys.executable  # the interpreter Titan is installed in
    hub.apply(recipe)
    ref = "job/train-xgboost-cpu"

    def training_sampled() -> dict[str, dict[str, Any]] | None:
        found = sources(server, "train-xgboost-cpu")
        wanted = {"host:job", "host:scheduler", "host:worker-0", "host:worker-1", "dask:scheduler"}
        return found if wanted <= set(found) else None

    wait_for(training_sampled, timeout=120)  # while it trains
    top = titan(server, "top", "--once", env={"COLUMNS": "200"})
    assert "admin/job/train-xgboost-cpu" in top.stdout and "worker-1" in top.stdout
    assert 'resource="admin/job/train-xgboost-cpu"' in server.request("GET", "/metrics").text

    done = hub.wait(ref, {"succeeded"}, timeout=300)
    assert "job exited with code 0" in done["status_reason"]
    text = hub.logs(ref, "job")["processes"]["job"]["text"]
    result = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
    assert result["device"] == "cpu" and result["rows"] == 200_000
    assert result["rmse"] < result["baseline_rmse"] / 2

    folder = server.settings.outputs_dir / "admin" / "job" / "train-xgboost-cpu" / "runs" / "1"
    assert result["model"] == str(folder / "model.json")
    model = json.loads((folder / "model.json").read_text())
    assert model["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] == "30"
    assert json.loads((folder / "metrics.json").read_text())["rmse"] == result["rmse"]

    stored: dict[str, float] = {}
    for metric in ("training_rmse", "training_seconds", "training_rows_per_second"):
        series = hub.telemetry(ref, metric, start=time.time() - 900, step=1)["series"]
        [training] = [s for s in series if s["source"] == "training"]
        stored[metric] = training["points"][-1][1]
    assert stored["training_rmse"] == pytest.approx(result["rmse"])
    assert stored["training_seconds"] == pytest.approx(result["seconds"])
    assert stored["training_rows_per_second"] == pytest.approx(200_000 * 30 / result["seconds"])
    workers = hub.telemetry(ref, "process_cpu_percent", start=time.time() - 900, step=1)
    assert {"host:worker-0", "host:worker-1", "host:job"} <= {
        s["source"] for s in workers["series"]
    }


def test_training_reads_parquet_and_csv_and_the_cupy_task_falls_back_to_numpy(
    tmp_path: Path,
) -> None:
    import numpy as np
    import pandas as pd
    from distributed import LocalCluster

    from workers.training.cupy_task import gram_checksum
    from workers.training.xgboost_train import table_data, train_regression

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(4000, 5)), columns=[f"f{i}" for i in range(5)])
    frame["label"] = frame @ np.arange(1.0, 6.0) + rng.normal(scale=0.1, size=4000)
    frame.to_parquet(tmp_path / "data.parquet")
    frame.to_csv(tmp_path / "data.csv", index=False)
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    )
    with cluster, Client(cluster) as client:
        for path in ("data.parquet", "data.csv"):
            x, y = table_data(str(tmp_path / path), "label")
            result, _booster = train_regression(client, rounds=20, data=(x, y))
            assert (result.rows, result.features, result.device) == (4000, 5, "cpu")
            assert result.rmse < result.baseline_rmse / 4
        with pytest.raises(ValueError, match="--label 'target' is not a column"):
            table_data(str(tmp_path / "data.parquet"), "target")
        checked = gram_checksum(client, 512, 128)
        import dask.array as da

        state = da.random.RandomState(0)  # the task's matrix, made here
        expected = state.random_sample((512, 512), chunks=(128, 128)).astype("float32").compute()
        assert checked["device"] == "cpu"
        assert checked["checksum"] == pytest.approx(float((expected @ expected.T).sum()), rel=1e-4)


def test_metric_names_unknown_metrics_and_time_forms(tmp_path: Path) -> None:
    with fake_backend_server(tmp_path / "data") as server:
        hub = server.hub()
        hub.apply({"type": "job", "name": "fit", "spec": {"command": "true"}})
        now = time.time()
        chunk = {
            "source": "training",
            "times": [now - 7200, now - 60],
            "values": {"custom_loss": [2.0, 1.0], "host_cpu_percent": [5.0, 6.0]},
        }
        posted = server.request(
            "POST", "/api/v1/telemetry", json={"resource": "admin/job/fit", "chunks": [chunk]}
        )
        assert posted.status_code == 202, posted.text

        names = {m["name"]: m for m in hub.metric_names()}
        assert names["host_cpu_percent"]["standard"] and names["host_cpu_percent"]["description"]
        assert names["custom_loss"] == {
            "name": "custom_loss",
            "description": None,
            "standard": False,
        }
        bob = make_user(server, "bob")
        seen = server.request("GET", "/api/v1/telemetry/metrics", token=bob).json()
        assert "gpu_utilization_percent" in {m["name"] for m in seen}
        assert "custom_loss" not in {m["name"] for m in seen}  # only on admin's job
        listed = titan(server, "metrics")
        assert listed.returncode == 0 and "custom_loss" in listed.stdout

        path = "/api/v1/resources/job/fit/telemetry?metric="
        missing = server.request("GET", path + "custom_los")
        assert missing.status_code == 404
        message = missing.json()["error"]["message"]
        assert "did you mean 'custom_loss'?" in message and "host_cpu_percent" in message
        # A standard metric not (yet) reported is an empty answer, not an error.
        empty = server.request("GET", path + "gpu_utilization_percent")
        assert empty.status_code == 200 and empty.json()["series"] == []

        def window(start: str, end: str = "now") -> tuple[float, float]:
            answer = server.request("GET", f"{path}custom_loss&from={start}&to={end}&step=60")
            assert answer.status_code == 200, answer.text
            return answer.json()["from"] - now, answer.json()["to"] - now

        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3 * 3600))
        for start, end, expected in [
            ("-30m", "now", (-1800, 0)),
            ("-2d", "-1h", (-2 * 86400, -3600)),
            (iso, "-90s", (-3 * 3600, -90)),
            (str(int(now - 300)), "now", (-300, 0)),
        ]:
            assert window(start, end) == pytest.approx(expected, abs=5)
        for field in ("from", "to"):
            bad = server.request("GET", f"{path}custom_loss&{field}=yesterday")
            assert bad.status_code == 422
            assert bad.json()["error"]["message"].startswith(f"{field}: 'yesterday' is not a time")
            assert "ISO 8601" in bad.json()["error"]["message"]
        raw = hub.telemetry("job/fit", "custom_loss", start="-30m", end="now", step=1)
        assert raw["series"][0]["points"][-1][1] == 1.0
