"""The worker set of a cluster: which named workers it should have.

The set is data the control plane keeps (``Resource.workers``), not a count:
adaptive scale-down retires particular idle workers, so the survivors keep
their names (``worker-0``, ``worker-2``) and their processes. These functions
are pure; the reconciler and the autoscaler store what they return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from service.recipes.models import ClusterFields

_NAME = re.compile(r"^worker-(\d+)$")


def worker_name(index: int) -> str:
    """The name of the worker with ``index`` (its Dask worker or Ray node name too)."""
    return f"worker-{index}"


def is_worker(name: str) -> bool:
    """Whether ``name`` is a worker's process name."""
    return _NAME.match(name) is not None


def _index(name: str) -> int:
    match = _NAME.match(name)
    return int(match.group(1)) if match else -1


def desired_count(cluster: ClusterFields, current: Sequence[str] | None) -> int:
    """How many workers to run.

    A fixed cluster runs ``n_workers``. An adaptive one keeps its current size
    (the autoscaler moves it) within the bounds; it starts at ``n_workers``
    kept within the bounds.
    """
    if cluster.adaptive is None:
        return cluster.n_workers
    return cluster.adaptive.clamp(cluster.n_workers if current is None else len(current))


def grow(names: Sequence[str], count: int) -> list[str]:
    """``names`` plus new workers up to ``count``, taking the lowest free indexes."""
    result = list(names)
    taken = {_index(n) for n in names}
    index = 0
    while len(result) < count:
        if index not in taken:
            result.append(worker_name(index))
        index += 1
    return result


def shrink(names: Sequence[str], count: int, remove_first: Iterable[str] = ()) -> list[str]:
    """``names`` cut to ``count``: those in ``remove_first`` go first (in its order),
    then the highest-numbered ones. Order of the survivors is kept."""
    excess = max(0, len(names) - count)
    chosen: list[str] = [n for n in dict.fromkeys(remove_first) if n in names][:excess]
    for name in sorted(names, key=_index, reverse=True):
        if len(chosen) >= excess:
            break
        if name not in chosen:
            chosen.append(name)
    return [n for n in names if n not in chosen]


def resize(names: Sequence[str] | None, count: int, remove_first: Iterable[str] = ()) -> list[str]:
    """``names`` grown or shrunk to exactly ``count`` workers."""
    current = list(names or [])
    if len(current) < count:
        return grow(current, count)
    return shrink(current, count, remove_first)


def next_workers(
    cluster: ClusterFields, current: Sequence[str] | None, unstarted: Iterable[str] = ()
) -> list[str]:
    """The worker set ``cluster`` asks for, changing ``current`` as little as possible;
    workers in ``unstarted`` are the first to go when it shrinks."""
    return resize(current, desired_count(cluster, current), unstarted)
