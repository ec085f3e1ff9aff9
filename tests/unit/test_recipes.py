"""Recipe validation: every example is valid, every mistake is named with its path."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from service.config import DEFAULT_INSTANCE_TYPES
from service.core.workloads.processes import planned_processes
from service.recipes.models import RecipeInvalid, parse_recipe, recipe_document
from service.recipes.schema import render
from service.recipes.units import parse_duration, parse_memory

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
EXAMPLES = sorted(p for p in RECIPES.glob("*.json") if p.name != "schema.json")


def problems(data: Any) -> dict[str, dict[str, Any]]:
    with pytest.raises(RecipeInvalid) as info:
        parse_recipe(data, DEFAULT_INSTANCE_TYPES)
    return {p["path"]: p for p in info.value.problems}


def test_there_are_examples_for_each_use() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"cpu-cluster", "gpu-cluster", "workspace-with-cluster", "train-xgboost-cpu"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_recipe_is_valid(path: Path) -> None:
    recipe = parse_recipe(json.loads(path.read_text()), DEFAULT_INSTANCE_TYPES)
    assert recipe.name == json.loads(path.read_text())["name"]


def test_schema_file_is_current() -> None:
    assert (RECIPES / "schema.json").read_text() == render(), (
        "recipes/schema.json is stale: run python -m service.recipes.schema > recipes/schema.json"
    )


def test_schema_rejects_unknown_keys_too() -> None:
    schema = json.loads(render())
    assert schema["$defs"]["ClusterSpec"]["additionalProperties"] is False


def test_defaults_fill_a_minimal_cluster() -> None:
    recipe = parse_recipe({"type": "cluster", "name": "c"})
    assert recipe.cluster is not None and recipe.cluster.n_workers == 1
    assert recipe_document(recipe)["spec"]["auto_shutoff"] == "never"


def test_typos_are_errors_with_the_allowed_fields() -> None:
    found = problems({"type": "cluster", "name": "c", "spec": {"nworkers": 3}})
    assert "unknown field" in found["spec.nworkers"]["message"]
    assert "n_workers" in found["spec.nworkers"]["message"]
    assert found["spec.nworkers"]["value"] == 3


def test_every_problem_is_listed_at_once() -> None:
    found = problems(
        {
            "type": "cluster",
            "name": "ok",
            "spec": {"n_workers": -1, "worker": {"memory": "lots"}, "instance_type": "huge"},
        }
    )
    assert set(found) == {"spec.n_workers", "spec.worker.memory", "spec.instance_type"}
    assert found["spec.n_workers"]["value"] == -1
    assert "cpu-small" in found["spec.instance_type"]["message"]


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "../etc",
        "UPPER",
        "-lead",
        "trail-",
        "",
        "x" * 64,
        "café",
        "a\u200bb",
        "\uff46\uff55\uff4c\uff4c",
        "a b",
    ],
)
def test_names_must_be_dns_labels(name: str) -> None:
    assert (
        "DNS label"
        in problems({"type": "job", "name": name, "spec": {"command": "true"}})["name"]["message"]
    )


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"n_workers": 100000}, "spec.n_workers"),
        ({"resources": {"cpu": -2}}, "spec.resources.cpu"),
        ({"resources": {"memory": "900TiB"}}, "spec.resources.memory"),
        ({"resources": {"gpu": 10000}}, "spec.resources.gpu"),
        ({"worker": {"nthreads": 0}}, "spec.worker.nthreads"),
        ({"worker": {"gpu": 1.5}}, "spec.worker.gpu"),
        ({"worker": {"gpu": 0.333}}, "spec.worker.gpu"),
        ({"adaptive": {"minimum": 5, "maximum": 2}}, "spec.adaptive"),
        ({"auto_shutoff": "soon"}, "spec.auto_shutoff"),
        ({"environment_variables": {"TITAN_TOKEN": "x"}}, "spec.environment_variables"),
        ({"environment_variables": {"1BAD": "x"}}, "spec.environment_variables"),
        ({"image": "bad image!"}, "spec.image"),
        ({"instance_type": "cpu-small", "resources": {"cpu": 1}}, "spec"),
    ],
)
def test_bad_sizes_and_values_name_their_path(spec: dict[str, Any], path: str) -> None:
    assert path in problems({"type": "cluster", "name": "c", "spec": spec})


def test_job_needs_a_command() -> None:
    assert problems({"type": "job", "name": "j", "spec": {}})["spec.command"]["message"] == (
        "required field is missing"
    )
    assert "spec.command" in problems({"type": "job", "name": "j", "spec": {"command": ""}})


def test_unknown_types_rejected() -> None:
    assert "workspace" in problems({"type": "vm", "name": "d"})["type"]["message"]
    assert "" in problems([1, 2])


def test_schema_version_is_checked() -> None:
    assert "schema_version" in problems({"schema_version": 2, "type": "cluster", "name": "c"})


def test_workspace_and_job_can_attach_a_cluster() -> None:
    recipe = parse_recipe(
        {
            "type": "job",
            "name": "j",
            "spec": {"command": ["python", "-V"], "dask_cluster": {"n_workers": 3}},
        }
    )
    assert recipe.cluster is not None and recipe.cluster.n_workers == 3


def test_units() -> None:
    assert parse_memory("2GiB") == 2 * 1024**3
    assert parse_memory("512MB") == 512 * 1000**2
    assert parse_memory("1024") == 1024
    assert parse_duration("90m") == 5400
    assert parse_duration("never") is None
    with pytest.raises(ValueError, match="not a size"):
        parse_memory("2 apples")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1 week")


@pytest.mark.parametrize(
    ("slurm", "path", "words"),
    [
        ({"partition": "gpu nodes"}, "spec.slurm.partition", "must be a Slurm name"),
        ({"account": "a\x00b"}, "spec.slurm.account", "must be a Slurm name"),
        ({"qos": "x" * 65}, "spec.slurm.qos", "must be a Slurm name"),
        ({"time_limit": "1 day"}, "spec.slurm.time_limit", "must be a Slurm time"),
        ({"time_limit": "\ud800"}, "spec.slurm.time_limit", "must be a Slurm time"),
        ({"nodes": "n1"}, "spec.slurm.nodes", "unknown field"),
    ],
)
def test_slurm_options_name_the_field_and_the_fix(
    slurm: dict[str, Any], path: str, words: str
) -> None:
    found = problems({"type": "job", "name": "j", "spec": {"command": "true", "slurm": slurm}})
    assert set(found) == {path}
    assert words in found[path]["message"]


def test_slurm_options_reach_every_process() -> None:
    spec = {"slurm": {"partition": "gpu", "time_limit": "1-00:00:00"}, "n_workers": 1}
    planned = planned_processes(parse_recipe({"type": "cluster", "name": "c", "spec": spec}), {})
    assert {p.scheduling["partition"] for p in planned.values()} == {"gpu"}
    unset = planned_processes(parse_recipe({"type": "cluster", "name": "c"}), {})["scheduler"]
    assert unset.scheduling == {}
    # Without options a process keeps the fingerprint it had before there were any, so
    # an upgrade restarts nothing.
    before = {k: v for k, v in dataclasses.asdict(unset).items() if k != "scheduling"}
    text = json.dumps(before, sort_keys=True).encode()
    assert unset.spec_hash == hashlib.sha256(text).hexdigest()


def test_a_value_matching_no_union_member_is_one_problem() -> None:
    found = problems({"type": "job", "name": "j", "spec": {"command": {"argv": ["a"]}}})
    assert list(found) == ["spec.command"]
    assert found["spec.command"]["message"] == "Input should be a valid string or a valid list"


def test_a_union_member_that_got_inside_names_the_item() -> None:
    found = problems({"type": "job", "name": "j", "spec": {"command": ["echo", 1]}})
    assert list(found) == ["spec.command[1]"]
    assert found["spec.command[1]"]["message"] == "Input should be a valid string"


@pytest.mark.parametrize(
    ("spec", "path", "suggestion"),
    [
        ({"nworkers": 3}, "spec.nworkers", "n_workers"),
        ({"worker": {"nthread": 2}}, "spec.worker.nthread", "nthreads"),
        (
            {"folders": [{"name": "f", "path": "/data", "readonly": True}]},
            "spec.folders[0].readonly",
            "read_only",
        ),
    ],
)
def test_a_near_miss_of_a_field_is_named(spec: dict[str, Any], path: str, suggestion: str) -> None:
    found = problems({"type": "cluster", "name": "c", "spec": spec})
    assert f"did you mean `{suggestion}`?" in found[path]["message"]
    assert "allowed here: " in found[path]["message"]


def test_an_unknown_field_unlike_any_says_check_the_spelling() -> None:
    found = problems({"type": "cluster", "name": "c", "spec": {"zzz": 1}})
    assert "did you mean" not in found["spec.zzz"]["message"]
    assert "check the spelling" in found["spec.zzz"]["message"]


def test_values_echoed_in_problems_are_cut_short() -> None:
    found = problems(
        {
            "type": "cluster",
            "name": "c",
            "spec": {"n_workers": "9" * 500 + "x", "instance_type": "y" * 500},
            "nmae": {"deep": ["z" * 1000]},
        }
    )
    for item in found.values():
        assert len(json.dumps(item)) < 600, item
    assert found["spec.n_workers"]["value"] == "9" * 80 + "…"
    assert len(found["nmae"]["value"]) == 81
    assert "y" * 81 not in found["spec.instance_type"]["message"]


def test_a_missing_field_echoes_nothing() -> None:
    found = problems({"type": "job", "name": "j", "spec": {}})
    assert found["spec.command"] == {
        "path": "spec.command",
        "message": "required field is missing",
        "value": None,
    }
