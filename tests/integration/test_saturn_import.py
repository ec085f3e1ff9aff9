"""`titan import saturn` and POST /api/v1/recipes/import/saturn against a real server: the
report, refusals naming each field, --lenient, a converted scheduled job that really
runs (started now with `titan run`, its own logs read back), and a converted deployment
that really serves through the front door."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import RunningServer, ServerFactory
from tests.integration.test_cli import titan
from tests.waiting import wait_for

ROUTE = "/api/v1/recipes/import/saturn"
SIZES = {"large": "cpu-small", "medium": "cpu-small"}
# A Saturn job as the 2022 schema writes it: a schedule, retries and a policy Titan keeps.
JOB_2022: dict[str, Any] = {
    "name": "Nightly-Greeting",
    "image_uri": "public.ecr.aws/saturncloud/saturn:2022.04.01",
    "environment_variables": {"GREETING": "hello from saturn"},
    "working_directory": "/home/jovyan/workspace",
    "job": {
        "instance_type": "large",
        "command": 'echo "$GREETING"',
        "schedule": "0 2 * * *",
        "backoff_limit": 3,
        "concurrency_policy": "Forbid",
    },
    "schema_version": "2022.06.01",
}
# The same job installing an apt package, which Titan cannot do safely: refused.
WITH_APT = {**JOB_2022, "extra_packages": {"apt": {"install": "htop"}}}
WORKSPACE_2025: dict[str, Any] = {
    "schema_version": "2025.10.01",
    "type": "workspace",
    "spec": {
        "name": "notebook",
        "instance_type": "large",
        "disk_space": "10Gi",
        "start_ssh": True,
        "dask_cluster": {
            "num_workers": 2,
            "scheduler": {"instance_type": "medium"},
            "worker": {"instance_type": "xlarge"},
        },
        "routes": [{"subdomain": "tb", "container_port": 6006, "visibility": "org"}],
    },
}


# A Saturn deployment as the 2022 schema writes it: a command on port 8000 and 0.0.0.0
# (Saturn's rule), two instances, a subdomain, public. Python's own file server stands for
# the app (run by the interpreter Titan is installed in).
PYTHON = shlex.quote(sys.executable)
DEPLOYMENT_2022: dict[str, Any] = {
    "name": "Files",
    "image": {"owner": "saturncloud", "name": "saturn", "version": "2022.05.01"},
    "deployment": {
        "instance_type": "large",
        "command": f"{PYTHON} -m http.server 8000 --bind 0.0.0.0",
        "instance_count": 2,
        "start_ssh": False,
        "subdomain": "files",
        "public": True,
    },
    "schema_version": "2022.08.01",
}
# The current schema's deployment with viewers, which Titan refuses (visibility only).
DEPLOYMENT_2025: dict[str, Any] = {
    "schema_version": "2025.10.01",
    "type": "deployment",
    "spec": {
        "name": "model",
        "instance_type": "large",
        "command": "uvicorn app:app --host 0.0.0.0 --port 8080",
        "scale": 2,
        "routes": [{"subdomain": "model", "container_port": 8080, "visibility": "owner"}],
        "viewers": [{"identity": "ml-team"}],
    },
}


def _server(start_server: ServerFactory) -> RunningServer:
    return start_server(saturn_instance_types=SIZES)


def test_the_cli_reports_refuses_and_applies_leniently(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = _server(start_server)
    recipe = tmp_path / "saturn.json"
    recipe.write_text(json.dumps(JOB_2022))

    converted = titan(server, "import", "saturn", str(recipe))
    assert converted.returncode == 0, converted.stderr
    (job,) = json.loads(converted.stdout)
    assert job["name"] == "nightly-greeting" and job["spec"]["instance_type"] == "cpu-small"
    assert job["spec"]["environment_variables"] == {"GREETING": "hello from saturn"}
    spec = job["spec"]
    assert (spec["schedule"], spec["retries"], spec["concurrency_policy"]) == (
        "0 2 * * *",
        3,
        "Forbid",
    )
    table = converted.stderr
    assert "job.instance_type" in table and "translated" in table and "spec.instance_type" in table
    for field in ("job.schedule", "job.backoff_limit", "job.concurrency_policy"):
        assert field in table, table
    assert "spec.retries" in table and "spec.schedule" in table

    with_apt = tmp_path / "with-apt.json"
    with_apt.write_text(json.dumps(WITH_APT))
    strict = titan(server, "import", "saturn", str(with_apt))
    assert strict.returncode == 1 and strict.stdout == ""
    assert "1 Saturn field cannot be converted" in strict.stderr, strict.stderr
    assert "  extra_packages.apt: " in strict.stderr and "--lenient" in strict.stderr

    lenient = titan(server, "import", "saturn", "-", "--lenient", stdin=with_apt.read_text())
    assert lenient.returncode == 0, lenient.stderr
    (without_apt,) = json.loads(lenient.stdout)
    assert "htop" not in json.dumps(without_apt)
    assert "(dropped: --lenient)" in lenient.stderr

    applied = titan(server, "import", "saturn", str(recipe), "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "job/nightly-greeting created (generation 1)" in applied.stdout
    hub = server.hub()
    assert hub.runs("job/nightly-greeting") == []  # it waits for 02:00 UTC
    started = titan(server, "run", "job/nightly-greeting", "--wait", "--timeout", "120")
    assert started.returncode == 0, started.stdout + started.stderr
    (run,) = hub.runs("job/nightly-greeting")
    assert (run["trigger"], run["status"]) == ("manual", "succeeded")
    logs = hub.logs("job/nightly-greeting", job_run=run["number"])
    assert any("hello from saturn" in chunk["text"] for chunk in logs["processes"].values())


def test_the_api_answers_the_report_or_names_every_refused_field(
    start_server: ServerFactory,
) -> None:
    server = _server(start_server)
    strict = server.request("POST", ROUTE, json=WORKSPACE_2025)
    assert strict.status_code == 422, strict.text
    error = strict.json()["error"]
    paths = [problem["path"] for problem in error["details"]]
    assert paths == ["spec.start_ssh", "spec.dask_cluster.worker.instance_type", "spec.routes"]
    assert "TITAN_SATURN_INSTANCE_TYPES" in error["details"][1]["message"]
    assert "lenient" in error["message"]

    answer = server.request("POST", ROUTE + "?lenient=true", json=WORKSPACE_2025)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    outcomes = {row["field"]: row["outcome"] for row in body["report"]}
    assert outcomes["spec.name"] == "kept" and outcomes["spec.instance_type"] == "translated"
    assert outcomes["spec.disk_space"] == "dropped" and outcomes["spec.routes"] == "dropped"
    (recipe,) = body["recipes"]
    assert recipe["spec"]["dask_cluster"]["n_workers"] == 2
    # What the import makes, Titan takes as it is (planned here: nothing starts).
    planned = server.request("POST", "/api/v1/recipes/plan", json=recipe)
    assert planned.status_code == 200, planned.text
    assert planned.json()["action"] == "create"


def test_the_api_refuses_what_is_no_saturn_recipe_or_no_json(start_server: ServerFactory) -> None:
    server = _server(start_server)
    nothing = server.request("POST", ROUTE, json={"hello": "world"})
    assert nothing.status_code == 422
    assert "not a Saturn resource recipe" in nothing.json()["error"]["message"]
    yaml = server.request(
        "POST", ROUTE, content="name: x\n", headers={"Content-Type": "application/yaml"}
    )
    assert yaml.status_code == 415
    nul = '{"type": "job", "spec": {"name": "j", "command": "echo \\u0000"}}'
    stored = server.request(
        "POST", ROUTE, content=nul, headers={"Content-Type": "application/json"}
    )
    assert stored.status_code == 422 and "spec.command" in stored.json()["error"]["message"]
    huge = '{"type": "job", "spec": {"name": "j", "command": "true", "retries": 1' + "0" * 400
    huge += "}}"
    big = server.request("POST", ROUTE, content=huge, headers={"Content-Type": "application/json"})
    assert big.status_code == 422 and "spec.retries" in big.json()["error"]["message"]


def test_a_saturn_deployment_is_imported_applied_and_served_through_the_front_door(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = _server(start_server)
    recipe = tmp_path / "saturn-deployment.json"
    recipe.write_text(json.dumps(DEPLOYMENT_2022))
    applied = titan(server, "import", "saturn", str(recipe), "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "deployment/files created (generation 1)" in applied.stdout, applied.stdout
    report = applied.stderr
    for field in ("deployment.command", "deployment.instance_count", "deployment.public"):
        assert field in report, report
    assert "spec.scale" in report and "spec.routes" in report and "deployment.subdomain" in report
    hub = server.hub()
    running = hub.wait("deployment/files", {"running"}, timeout=120)
    assert running["workers"] == {"ready": 2, "wanted": 2}, running
    spec = hub.recipe("deployment/files")["spec"]
    assert spec["command"] == f"{PYTHON} -m http.server ${{PORT}} --bind ${{TITAN_BIND_HOST}}"
    assert (spec["scale"], spec["routes"]) == (2, [{"path": "/", "visibility": "public"}])
    # public: anyone, without a token, through the front door; both replicas answer.
    url = f"{server.url}/deploy/admin/files/"

    def listed() -> bool:
        answers = [httpx.get(url, timeout=30) for _ in range(4)]
        return all(a.status_code == 200 and "Directory listing" in a.text for a in answers)

    assert wait_for(listed, timeout=30)

    # The current schema: viewers refused (422 naming the field), dropped with lenient.
    strict = server.request("POST", ROUTE, json=DEPLOYMENT_2025)
    assert strict.status_code == 422, strict.text
    assert [p["path"] for p in strict.json()["error"]["details"]] == ["spec.viewers"]
    answer = server.request("POST", ROUTE + "?lenient=true", json=DEPLOYMENT_2025)
    assert answer.status_code == 200, answer.text
    (model,) = answer.json()["recipes"]
    assert model["spec"]["command"] == "uvicorn app:app --host ${TITAN_BIND_HOST} --port ${PORT}"
    assert model["spec"]["routes"] == [{"path": "/", "visibility": "owner"}]
    planned = server.request("POST", "/api/v1/recipes/plan", json=model)
    assert planned.status_code == 200 and planned.json()["action"] == "create", planned.text
