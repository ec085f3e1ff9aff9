"""Saturn's attachments as Titan fields: secrets, shared folders and the Dask cluster.

Each function reads one Saturn field, writes what Titan can honour into the draft and
reports every item and sub-field (see :mod:`service.recipes.importers.draft`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any, Protocol

from service.json_values import join_path, quoted
from service.recipes.importers.draft import Draft, Path
from service.recipes.importers.saturn_document import SaturnField
from service.recipes.units import parse_memory

SIZES_SETTING = "TITAN_SATURN_INSTANCE_TYPES"


class Size(Protocol):
    """An entry of Titan's instance-type catalog."""

    cpu: float
    memory: str
    gpu: int


def owner_name(owner: Any) -> str | None:
    """The name a Saturn owner reference gives (a name, or ``{"name": ...}``); None for
    one by id, which names nobody Titan knows."""
    if isinstance(owner, str):
        return owner
    if isinstance(owner, dict) and set(owner) == {"name"} and isinstance(owner["name"], str):
        return owner["name"]
    return None


def titan_size(draft: Draft, sizes: Mapping[str, str], path: str, value: Any) -> str | None:
    """The Titan instance type the operator's table gives Saturn size ``value``, or None
    (refused, or dropped where lenient: Titan's default size applies)."""
    if not isinstance(value, str):
        draft.refuse(path, "a Saturn size is a name such as 'large'", value)
        return None
    if value not in sizes:
        table = ", ".join(f"{k} → {v}" for k, v in sorted(sizes.items())) or "empty"
        draft.refuse(
            path,
            f"no Titan instance type for the Saturn size {quoted(value)} in the operator's "
            f"table {SIZES_SETTING} ({table}); without it Titan's default size applies",
            value,
        )
        return None
    return sizes[value]


def unknown(draft: Draft, path: str, value: Any, known: tuple[str, ...]) -> None:
    """Refuse a sub-field Titan does not know (never silently ignored)."""
    draft.refuse(path, f"not a Saturn field Titan knows here (known: {', '.join(known)})", value)


SECRET_FIELDS = ("name", "owner", "type", "attachment_type", "location", "description")


def secrets(draft: Draft, field: SaturnField) -> None:
    """Each Saturn secret attachment as a Titan secret reference (a variable or a file
    in $TITAN_SECRETS_DIR)."""
    if not isinstance(field.value, list):
        draft.refuse(field.path, "a list of secret attachments", field.value)
        return
    for index, item in enumerate(field.value):
        path = f"{field.path}[{index}]"
        if not isinstance(item, dict):
            draft.refuse(path, "a secret attachment is an object", item)
            continue
        for key in item:
            if key == "description":
                draft.drop(f"{path}.description", "Titan's secret references have no description")
            elif key not in SECRET_FIELDS:
                unknown(draft, join_path(path, key), item[key], SECRET_FIELDS)
        _secret(draft, path, item)


def _secret(draft: Draft, path: str, item: dict[str, Any]) -> None:
    name, location = item.get("name"), item.get("location")
    kind = item.get("attachment_type", item.get("type"))
    if not isinstance(name, str) or not isinstance(location, str):
        draft.refuse(path, "Titan hands a secret by its name to a location: give both", item)
        return
    ref: dict[str, Any] = {"name": name}
    if "owner" in item:
        owner = owner_name(item["owner"])
        if owner is None:
            draft.refuse(path, "the secret's owner must be given by name", item["owner"])
            return
        ref["owner"] = owner
    if kind == "environment_variable":
        ref["env"] = location
        why = f"the secret {quoted(name)} as ${location}"
    elif kind == "file":
        ref["file"] = PurePosixPath(location).name
        why = (
            f"the secret {quoted(name)} as the file $TITAN_SECRETS_DIR/{ref['file']}, not at "
            f"{quoted(location)}: point the program there"
        )
    else:
        draft.refuse(path, "the type of a secret attachment is environment_variable or file", kind)
        return
    spec = draft.recipe["spec"]
    taken = set(spec.get("environment_variables", {}))
    taken |= {str(r.get("env") or r.get("file")) for r in spec.get("secrets", [])}
    problem = draft.titan_problem({"secrets": [ref]})
    if str(ref.get("env") or ref.get("file")) in taken:
        problem = f"{quoted(location)} is given twice (a variable or another secret)"
    if problem is not None:
        draft.refuse(path, f"{problem}; the secret must exist in Titan under a valid name", item)
        return
    draft.translate(
        path, ("spec", "secrets", -1), ref, f"{why}; create it with titan secret create"
    )


FOLDER_FIELDS = ("name", "owner", "path")


def shared_folders(draft: Draft, field: SaturnField) -> None:
    """Each Saturn shared folder as a Titan shared folder mounted at the same path
    (Saturn's default path: /shared/OWNER/NAME)."""
    if not isinstance(field.value, list):
        draft.refuse(field.path, "a list of shared folders", field.value)
        return
    paths: set[str] = set()
    for index, item in enumerate(field.value):
        path = f"{field.path}[{index}]"
        if not isinstance(item, dict):
            draft.refuse(path, "a shared folder is an object", item)
            continue
        for key in item:
            if key not in FOLDER_FIELDS:
                unknown(draft, join_path(path, key), item[key], FOLDER_FIELDS)
        owner = owner_name(item.get("owner")) if "owner" in item else None
        name = item.get("name")
        if not isinstance(name, str) or ("owner" in item and owner is None):
            draft.refuse(path, "a shared folder is named by its name (and its owner's)", item)
            continue
        mount = item.get("path") or "/".join(["/shared", *([owner] if owner else []), name])
        ref = {"name": name, **({"owner": owner} if owner else {}), "path": mount}
        problem = draft.titan_problem({"folders": [ref]})
        if isinstance(mount, str) and mount.rstrip("/") in paths:
            problem = f"{mount} is the path of another folder"
        if problem is not None:
            draft.refuse(path, problem, item)
            continue
        paths.add(str(mount).rstrip("/"))
        create = f"titan folder create {name}" + (f" --owner {owner}" if owner else "")
        draft.translate(
            path,
            ("spec", "folders", -1),
            ref,
            f"mounted at {mount} (docker; a link in the starting folder locally); it must "
            f"exist in Titan ({create})",
        )


CLUSTER_FIELDS = ("num_workers", "scheduler", "worker", "status")
WORKER_FIELDS = ("instance_type", "num_processes", "num_threads", "use_spot_instances")


def dask_cluster(
    draft: Draft,
    field: SaturnField,
    sizes: Mapping[str, str],
    catalog: Mapping[str, Size],
    at: Path,
) -> None:
    """Saturn's Dask cluster as Titan cluster fields at ``at`` (``spec.dask_cluster`` of
    a workspace or job; ``spec`` of a standalone cluster): workers sized from the
    instance types the operator's table gives."""
    value = field.value
    if not isinstance(value, dict):
        draft.refuse(field.path, "a Dask cluster is an object", value)
        return
    cluster: dict[str, Any] = {}
    rows: list[Callable[[], None]] = []  # reported once the whole cluster is known valid
    count = value.get("num_workers", 1)
    if isinstance(count, bool) or not isinstance(count, int):
        draft.refuse(f"{field.path}.num_workers", "a whole number of workers", count)
        count = 1
    cluster["n_workers"] = count
    for key in value:
        if key == "status":
            draft.drop(
                f"{field.path}.status", "Saturn's running state; Titan starts it with its resource"
            )
        elif key not in CLUSTER_FIELDS:
            unknown(draft, join_path(field.path, key), value[key], CLUSTER_FIELDS)
    scheduler = value.get("scheduler")
    if isinstance(scheduler, dict):
        for key, item in scheduler.items():
            where = f"{field.path}.scheduler.{key}"
            if key != "instance_type":
                unknown(draft, where, item, ("instance_type",))
            elif (name := titan_size(draft, sizes, where, item)) is not None:
                cluster["scheduler"] = {"memory": catalog[name].memory}
                rows.append(_row(draft, where, at, "scheduler.memory", name, "the memory of"))
    elif scheduler is not None:
        draft.refuse(f"{field.path}.scheduler", "the scheduler is an object", scheduler)
    worker = value.get("worker")
    processes = 1
    if isinstance(worker, dict):
        processes = _worker(draft, field.path, worker, sizes, catalog, cluster, rows, at)
    elif worker is not None:
        draft.refuse(f"{field.path}.worker", "the worker is an object", worker)
    if processes > 1:
        cluster["n_workers"] = count * processes
    # Checked as Titan will read it: attached (spec.dask_cluster) or a cluster's own spec.
    problem = draft.titan_problem(cluster if len(at) == 1 else {str(at[-1]): cluster})
    if problem is not None:
        draft.refuse(field.path, problem, value)
        return
    workers_why = "Titan's n_workers" + (
        f": {count} machines x {processes} processes each" if processes > 1 else ""
    )
    draft.translate(
        f"{field.path}.num_workers", (*at, "n_workers"), cluster["n_workers"], workers_why
    )
    for placed in rows:
        placed()
    for key in ("scheduler", "worker"):
        if key in cluster:
            draft.place((*at, key), cluster[key])


def _row(draft: Draft, path: str, at: Path, titan: str, name: str, what: str) -> Callable[[], None]:
    text = ".".join(str(p) for p in (*at, titan))
    return lambda: draft.note(
        path, text, f"{what} Titan instance type {quoted(name)} ({SIZES_SETTING})"
    )


def _worker(
    draft: Draft,
    base: str,
    worker: dict[str, Any],
    sizes: Mapping[str, str],
    catalog: Mapping[str, Size],
    cluster: dict[str, Any],
    rows: list[Callable[[], None]],
    at: Path,
) -> int:
    """Fill ``cluster["worker"]``; return the Dask processes per Saturn worker machine."""
    out: dict[str, Any] = {}
    size: Size | None = None
    where = f"{base}.worker"
    for key, item in worker.items():
        if key == "use_spot_instances":
            draft.drop(
                f"{where}.{key}", "Titan runs on your own machines: there are no spot instances"
            )
        elif key not in WORKER_FIELDS:
            unknown(draft, f"{where}.{key}", item, WORKER_FIELDS)
    if "instance_type" in worker:
        name = titan_size(draft, sizes, f"{where}.instance_type", worker["instance_type"])
        if name is not None:
            size = catalog[name]
            out.update(nthreads=max(1, int(size.cpu)), memory=size.memory, gpu=size.gpu)
            rows.append(
                _row(
                    draft,
                    f"{where}.instance_type",
                    at,
                    "worker",
                    name,
                    "the CPUs, memory and GPUs of",
                )
            )
    processes = worker.get("num_processes", 1)
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        draft.refuse(f"{where}.num_processes", "a whole number of processes, at least 1", processes)
        processes = 1
    if size is not None and size.gpu and "num_processes" in worker:
        if processes != size.gpu:
            draft.refuse(
                f"{where}.num_processes", "a GPU worker runs one process per GPU", processes
            )
        else:
            draft.drop(f"{where}.num_processes", "dask cuda worker runs one process per GPU")
        processes = 1
    elif processes > 1 and out:
        out["nthreads"] = max(1, out["nthreads"] // processes)
        out["memory"] = f"{parse_memory(out['memory']) // processes // 2**20}MiB"
        rows.append(
            lambda: draft.note(
                f"{where}.num_processes",
                ".".join(str(p) for p in (*at, "n_workers")),
                f"one Titan worker per process, each with 1/{processes} of the machine",
            )
        )
    elif "num_processes" in worker and processes == 1:
        draft.drop(f"{where}.num_processes", "Titan runs one process per worker")
    elif processes > 1:
        draft.refuse(
            f"{where}.num_processes", "splitting a worker needs its instance_type", processes
        )
        processes = 1
    threads = worker.get("num_threads")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int):
            draft.refuse(f"{where}.num_threads", "a whole number of threads", threads)
        else:
            out["nthreads"] = threads
            text = ".".join(str(p) for p in (*at, "worker", "nthreads"))
            rows.append(lambda: draft.note(f"{where}.num_threads", text, "threads per Dask worker"))
    if out:
        cluster["worker"] = out
    return processes


def environment(draft: Draft, field: SaturnField) -> None:
    """Each Saturn environment variable kept, where Titan takes its name and value."""
    if not isinstance(field.value, dict):
        draft.refuse(
            field.path, "environment variables are an object of names and values", field.value
        )
        return
    kept = 0
    for key, value in field.value.items():
        path = join_path(field.path, key)
        problem = draft.titan_problem({"environment_variables": {key: value}})
        if kept >= 256:
            problem = "Titan takes at most 256 variables"
        if problem is not None:
            draft.refuse(path, problem, value)
            continue
        kept += 1
        draft.keep(path, ("spec", "environment_variables", key), value)
