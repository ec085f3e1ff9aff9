"""What processes a recipe asks for, and how each is launched.

``planned_processes`` is pure: the reconciler compares its result with what
runs, and ``plan`` compares it between two recipes, so both agree on what a
change restarts. A process restarts exactly when its ``spec_hash`` changes.
A cluster's processes come from its engine (:mod:`service.engines`); a
workspace's JupyterLab and a job's command from :mod:`service.core.workloads.programs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from service.config import InstanceType
from service.core.workloads import programs
from service.core.workloads.replicas import replica_set
from service.core.workloads.worker_names import next_workers
from service.engines import engine_of
from service.engines.base import Launch, Place, PlannedProcess
from service.recipes.models import (
    CommonSpec,
    DeploymentRecipe,
    JobRecipe,
    RecipeBase,
    Resources,
    WorkspaceRecipe,
)
from service.recipes.units import parse_memory


def size_of(spec: CommonSpec, catalog: dict[str, InstanceType]) -> Resources:
    """The size a spec asks for: its resources, its instance type, or the default."""
    if spec.resources is not None:
        return spec.resources
    if spec.instance_type is not None and spec.instance_type in catalog:
        entry = catalog[spec.instance_type]
        return Resources(cpu=entry.cpu, memory=entry.memory, gpu=entry.gpu)
    return Resources()


def planned_processes(
    recipe: RecipeBase,
    catalog: dict[str, InstanceType],
    workers: Sequence[str] | None = None,
    jobs: Sequence[str] | None = None,
) -> dict[str, PlannedProcess]:
    """Every process ``recipe`` runs, by name; the cluster's head (if any) first.

    ``workers`` names the cluster's current worker set (see
    :mod:`service.core.workloads.worker_names`); without it, the set a fresh start would have.
    ``jobs`` names a job's processes, one per open run where runs go on side by side (see
    :mod:`service.core.workloads.job_runs`); without it, the one ``job``.
    """
    spec: CommonSpec = recipe.spec  # type: ignore[attr-defined]
    size = size_of(spec, catalog)
    # Only what the recipe declares is reserved; an unsized process is best effort.
    declared = spec.resources is not None or spec.instance_type is not None
    common: dict[str, Any] = {
        "env": dict(spec.environment_variables),
        "image": spec.image,
        "working_directory": spec.working_directory,
        "start_script": spec.start_script,
        "secrets": [ref.model_dump() for ref in spec.secrets],
        "folders": [ref.model_dump() for ref in spec.folders],
        "scheduling": spec.slurm.options() if spec.slurm is not None else {},
    }
    processes: dict[str, PlannedProcess] = {}
    cluster = recipe.cluster
    if cluster is not None:
        names = workers if workers is not None else next_workers(cluster, None)
        # An attached cluster's workers take GPUs only where it says so.
        worker_size = size if cluster is spec else size.model_copy(update={"gpu": 0})
        engine = engine_of(cluster.engine)
        processes.update(engine.processes(cluster, names, common, declared, worker_size))
    if isinstance(recipe, DeploymentRecipe):
        command = recipe.spec.command
        replica = PlannedProcess(
            name=programs.REPLICA,
            role=programs.REPLICA,
            args={"shell": command} if isinstance(command, str) else {"argv": command},
            ports={programs.REPLICA: 1},
            cpu=size.cpu if declared else 0.0,
            memory_bytes=parse_memory(size.memory) if declared else 0,
            gpu=size.gpu,
            essential=False,  # replaced one by one while the others serve
            **common,
        )
        processes.update(replica_set(replica, recipe.spec.scale))
    main = _main_process(recipe)
    if main is not None:
        name, args = main
        processes[name] = PlannedProcess(
            name=name,
            role=name,
            args=args,
            ports={programs.JUPYTER: 1} if name == programs.JUPYTER else {},
            cpu=size.cpu if declared else 0.0,
            memory_bytes=parse_memory(size.memory) if declared else 0,
            gpu=size.gpu,
            attached=cluster is not None,
            **common,
        )
    if jobs is not None and programs.JOB in processes:  # the same command, once per run
        job = processes.pop(programs.JOB)
        processes.update({name: replace(job, name=name) for name in jobs})
    return processes


def _main_process(recipe: RecipeBase) -> tuple[str, dict[str, Any]] | None:
    if isinstance(recipe, WorkspaceRecipe):
        return programs.JUPYTER, {}
    if isinstance(recipe, JobRecipe):
        command = recipe.spec.command
        return programs.JOB, {"shell": command} if isinstance(command, str) else {"argv": command}
    return None


def launch_of(
    planned: PlannedProcess, ports: dict[str, int], place: Place, jupyter_token: str
) -> Launch:
    """How ``planned`` runs: its engine's launch, or its program's."""
    if planned.engine:
        return engine_of(planned.engine).launch(planned, ports, place)
    return programs.launch(planned, ports, jupyter_token, place.jupyter_prefix)


def endpoints_of(
    planned: PlannedProcess, ports: dict[str, int], host: str, secure: bool
) -> dict[str, str]:
    """The addresses ``planned`` serves once up, as reached at ``host``."""
    if planned.engine:
        return engine_of(planned.engine).endpoints(planned, ports, host, secure)
    return programs.endpoints(planned, ports, host)
