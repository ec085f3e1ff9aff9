"""What processes a recipe asks for: a cluster is one scheduler plus N workers.

``planned_processes`` is pure: the reconciler compares its result with what
runs, and ``plan`` compares it between two recipes, so both agree on what a
change restarts. A process restarts exactly when its ``spec_hash`` changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from service.backends.base import Role
from service.config import InstanceType
from service.core.workers import next_workers
from service.recipes.models import (
    CommonSpec,
    JobRecipe,
    RecipeBase,
    Resources,
    WorkspaceRecipe,
)
from service.recipes.units import parse_memory

SCHEDULER = "scheduler"


@dataclass(frozen=True)
class PlannedProcess:
    """One process a recipe asks for, before it has a token or an address."""

    name: str
    role: Role
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cpu: float = 0.0  # CPUs requested from the ledger (0: best effort, nothing declared)
    memory_bytes: int = 0  # memory requested from the ledger
    gpu: float = 0  # whole GPUs, or a share of one GPU when below 1
    image: str | None = None
    working_directory: str | None = None
    start_script: str | None = None
    needs_scheduler: bool = False
    secrets: list[dict[str, Any]] = field(default_factory=list)  # SecretRef fields, no values
    folders: list[dict[str, Any]] = field(default_factory=list)  # FolderRef fields

    @property
    def essential(self) -> bool:
        """Whether the resource is down without this process: its Dask scheduler,
        JupyterLab or a job's command are; a Dask worker is not (it can be replaced
        while the rest serves)."""
        return self.role != "worker"

    @property
    def spec_hash(self) -> str:
        """Fingerprint of everything that requires a restart when it changes."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def size_of(spec: CommonSpec, catalog: dict[str, InstanceType]) -> Resources:
    """The size a spec asks for: its resources, its instance type, or the default."""
    if spec.resources is not None:
        return spec.resources
    if spec.instance_type is not None and spec.instance_type in catalog:
        entry = catalog[spec.instance_type]
        return Resources(cpu=entry.cpu, memory=entry.memory, gpu=entry.gpu)
    return Resources()


def planned_processes(
    recipe: RecipeBase, catalog: dict[str, InstanceType], workers: Sequence[str] | None = None
) -> dict[str, PlannedProcess]:
    """Every process ``recipe`` runs, by name; the scheduler (if any) first.

    ``workers`` names the cluster's current worker set (see
    :mod:`service.core.workers`); without it, the set a fresh start would have.
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
    }
    processes: dict[str, PlannedProcess] = {}
    dask = recipe.dask
    if dask is not None:
        memory = dask.scheduler.memory
        processes[SCHEDULER] = PlannedProcess(
            name=SCHEDULER,
            role="scheduler",
            args=[],
            memory_bytes=parse_memory(memory) if memory else 0,
            **common,
        )
        worker_memory = parse_memory(dask.worker.memory or size.memory)
        gpus = dask.worker.gpu or (size.gpu if recipe.dask is spec else 0)
        names = workers if workers is not None else next_workers(dask, None)
        for name in names:
            args = ["--name", name, "--nthreads", str(dask.worker.nthreads)]
            args += ["--memory-limit", str(worker_memory)] + (["--gpu"] if gpus else [])
            processes[name] = PlannedProcess(
                name=name,
                role="worker",
                args=args,
                cpu=float(dask.worker.nthreads) if declared else 0.0,
                memory_bytes=worker_memory if declared or dask.worker.memory else 0,
                gpu=gpus,
                needs_scheduler=True,
                **common,
            )
    main = _main_process(recipe)
    if main is not None:
        processes[main[0]] = PlannedProcess(
            name=main[0],
            role=main[1],
            args=main[2],
            cpu=size.cpu if declared else 0.0,
            memory_bytes=parse_memory(size.memory) if declared else 0,
            gpu=size.gpu,
            needs_scheduler=dask is not None,
            **common,
        )
    return processes


def _main_process(recipe: RecipeBase) -> tuple[str, Role, list[str]] | None:
    if isinstance(recipe, WorkspaceRecipe):
        return "jupyter", "jupyter", []
    if isinstance(recipe, JobRecipe):
        command = recipe.spec.command
        args = ["--shell", command] if isinstance(command, str) else ["--", *command]
        return "job", "job", args
    return None
