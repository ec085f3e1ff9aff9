"""What a recipe runs and what a change restarts."""

from __future__ import annotations

from typing import Any

import pytest

from service.config import DEFAULT_INSTANCE_TYPES
from service.core.workloads.processes import launch_of, planned_processes
from service.engines.base import Place, PlannedProcess
from service.recipes.diff import field_changes, process_changes
from service.recipes.models import parse_recipe

PLACE = Place(head_host="127.0.0.1", head_ports={"scheduler": 4000, "gcs": 5000}, secure=True)


def plan(data: dict[str, Any]) -> dict[str, Any]:
    return planned_processes(parse_recipe(data), DEFAULT_INSTANCE_TYPES)


def argv(process: PlannedProcess) -> list[str]:
    """The command line ``process`` is launched with (its ports numbered from 6000)."""
    ports = {name: 6000 + 100 * index for index, name in enumerate(process.ports)}
    return launch_of(process, ports, PLACE, "jupyter-token").argv


def cluster(**spec: Any) -> dict[str, Any]:
    return {"type": "cluster", "name": "c", "spec": spec}


def test_a_cluster_is_a_scheduler_and_its_workers() -> None:
    processes = plan(cluster(n_workers=3, worker={"nthreads": 2, "memory": "1GiB"}))
    assert list(processes) == ["scheduler", "worker-0", "worker-1", "worker-2"]
    worker = processes["worker-1"]
    assert worker.attached and worker.role == "worker" and not worker.essential
    line = argv(worker)
    assert line[line.index("--nthreads") + 1] == "2"
    assert "tls://127.0.0.1:4000" in line  # its scheduler, over TLS
    assert worker.memory_bytes == 1024**3
    assert processes["scheduler"].head and processes["scheduler"].essential


def test_instance_type_sizes_workers_and_gpu_workers_run_dask_cuda() -> None:
    processes = plan(cluster(instance_type="gpu-1", n_workers=1))
    assert processes["worker-0"].gpu == 1
    assert argv(processes["worker-0"])[2:5] == ["dask", "cuda", "worker"]
    assert argv(plan(cluster(instance_type="cpu-small"))["worker-0"])[2:4] == ["dask", "worker"]


def test_workspace_with_cluster_and_job() -> None:
    workspace = plan({"type": "workspace", "name": "w", "spec": {"dask_cluster": {}}})
    assert set(workspace) == {"scheduler", "worker-0", "jupyter"}
    assert workspace["jupyter"].attached
    job = plan({"type": "job", "name": "j", "spec": {"command": "echo hi"}})
    assert list(job) == ["job"] and argv(job["job"]) == ["/bin/sh", "-c", "echo hi"]
    assert not job["job"].attached


def test_a_ray_cluster_is_a_head_and_worker_nodes_with_every_port_pinned() -> None:
    processes = plan(
        cluster(engine="ray", n_workers=2, worker={"nthreads": 3, "object_store_memory": "1GiB"})
    )
    assert list(processes) == ["head", "worker-0", "worker-1"]
    head, worker = processes["head"], processes["worker-1"]
    assert head.head and worker.attached and not worker.essential
    line = argv(worker)
    assert line[line.index("--address") + 1] == "127.0.0.1:5000"
    assert line[line.index("--num-cpus") + 1] == "3"
    assert line[line.index("--object-store-memory") + 1] == str(1024**3)
    for process in (head, worker):
        line = argv(process)
        # Every port Ray would otherwise pick itself is given, each its own.
        for flag in (
            "--node-manager-port",
            "--object-manager-port",
            "--metrics-export-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
        ):
            assert flag in line
        numbers = [line[i + 1] for i, arg in enumerate(line) if arg.endswith("-port")]
        assert len(numbers) == len(set(numbers))
        assert "--temp-dir" in line and "stop" not in line
    assert "--head" in argv(head) and argv(head)[argv(head).index("--num-cpus") + 1] == "0"


def test_ray_only_fields_are_refused_for_dask_and_ray_takes_whole_gpus() -> None:
    for spec, field in (
        ({"worker": {"object_store_memory": "1GiB"}}, "object_store_memory"),
        ({"engine": "ray", "worker": {"gpu": 0.5}}, "whole GPUs"),
        ({"engine": "spark"}, "engine"),
    ):
        try:
            plan(cluster(**spec))
        except ValueError as exc:
            assert field in str(exc)
        else:
            raise AssertionError(f"{spec} was accepted")


def test_adaptive_bounds_clamp_the_worker_count() -> None:
    processes = plan(cluster(n_workers=10, adaptive={"minimum": 1, "maximum": 3}))
    assert len([n for n in processes if n.startswith("worker")]) == 3


def test_scaling_up_starts_workers_and_restarts_nothing() -> None:
    change = process_changes(plan(cluster(n_workers=2)), plan(cluster(n_workers=4)))
    assert change["start"] == ["worker-2", "worker-3"]
    assert change["restart"] == [] and change["stop"] == []
    assert "scheduler" in change["unchanged"]


def test_scaling_down_stops_workers() -> None:
    change = process_changes(plan(cluster(n_workers=3)), plan(cluster(n_workers=1)))
    assert change["stop"] == ["worker-1", "worker-2"] and change["restart"] == []


def test_a_new_image_restarts_everything() -> None:
    change = process_changes(plan(cluster(image="a:1")), plan(cluster(image="a:2")))
    assert sorted(change["restart"]) == ["scheduler", "worker-0"]


def test_a_scheduler_change_restarts_what_is_attached() -> None:
    old = plan(cluster(n_workers=2))
    new = plan(cluster(n_workers=2, scheduler={"memory": "1GiB"}))
    assert sorted(process_changes(old, new)["restart"]) == ["scheduler", "worker-0", "worker-1"]


def test_a_new_command_restarts_the_job() -> None:
    old = plan({"type": "job", "name": "j", "spec": {"command": "a"}})
    new = plan({"type": "job", "name": "j", "spec": {"command": "b"}})
    assert process_changes(old, new)["restart"] == ["job"]


def test_the_hash_is_stable_and_sensitive() -> None:
    assert plan(cluster())["scheduler"].spec_hash == plan(cluster())["scheduler"].spec_hash
    env = plan(cluster(environment_variables={"A": "1"}))["worker-0"].spec_hash
    assert env != plan(cluster())["worker-0"].spec_hash


def test_field_changes_name_leaf_paths() -> None:
    old = {"spec": {"n_workers": 2, "worker": {"nthreads": 1}}, "name": "c"}
    new = {"spec": {"n_workers": 4, "worker": {"nthreads": 1}, "image": "x"}, "name": "c"}
    assert field_changes(old, new) == [
        {"path": "spec.image", "old": None, "new": "x"},
        {"path": "spec.n_workers", "old": 2, "new": 4},
    ]
    assert field_changes(old, old) == []


def test_without_ray_installed_a_ray_recipe_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from service.engines import engine_of

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    assert "pip install 'titan[ray]'" in engine_of("ray").missing()
    assert engine_of("dask").missing() == ""
