"""Whether a recipe can ever run: each process against the largest node there is.

Checked at apply (and plan) against every node the backend reports, busy or
not, drained or not: a process bigger than every node would wait forever, so
the recipe is refused with the figures instead. Whether it fits *now*, beside
what others hold, is the ledger's question at start (it waits, pending).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.capacity.ledger import Overcommit, amount
from service.database.models import Node
from service.engines.base import PlannedProcess
from service.errors import InvalidInput

GIB = 1024**3


@dataclass(frozen=True)
class NodeSize:
    """What one node can promise at most: its CPUs and memory times the overcommit."""

    name: str
    cpus: float
    memory_bytes: float
    gpus: int


def node_sizes(session: Session, overcommit: Overcommit) -> list[NodeSize]:
    """Every recorded node's most it can promise."""
    return [
        NodeSize(
            node.name,
            node.cpus * overcommit.cpu,
            node.memory_bytes * overcommit.memory,
            len(node.gpus or []),
        )
        for node in session.scalars(select(Node))
    ]


def check_fits(
    nodes: Sequence[NodeSize],
    processes: Iterable[PlannedProcess],
    together: bool,
    overcommit: Overcommit,
) -> None:
    """InvalidInput naming the first process (or, with ``together``, the essential
    processes together: one node runs them all) that no node could ever hold, with what it
    asks and what the largest node has. Without nodes recorded yet, nothing is refused."""
    if not nodes:
        return
    processes = list(processes)
    groups = [[p] for p in processes]
    essential = [p for p in processes if p.essential]
    if together and len(essential) > 1:
        groups.append(essential)
    for group in groups:
        problem = _misfit(nodes, group, overcommit)
        if problem:
            names = ", ".join(p.name for p in group)
            subject = f"{names} together ask" if len(group) > 1 else f"{names} asks"
            raise InvalidInput(
                f"spec: fits no node: {subject} for {problem}; make the recipe smaller "
                "(instance_type, resources, worker) or add a larger node"
            )


def _misfit(nodes: Sequence[NodeSize], group: list[PlannedProcess], overcommit: Overcommit) -> str:
    """What ``group`` asks that no single node has, with the largest node's figure; ""
    if some node holds it all."""
    cpu = sum(p.cpu for p in group)
    memory = sum(p.memory_bytes for p in group)
    gpus = sum(int(p.gpu) if p.gpu >= 1 else 1 for p in group if p.gpu > 0)
    for node in nodes:
        if cpu <= node.cpus and memory <= node.memory_bytes and gpus <= node.gpus:
            return ""
    if gpus > max(n.gpus for n in nodes):
        best = max(nodes, key=lambda n: n.gpus)
        return f"{gpus} GPU(s), but the node with the most, {best.name}, has {best.gpus}"
    if memory > max(n.memory_bytes for n in nodes):
        best = max(nodes, key=lambda n: n.memory_bytes)
        return (
            f"{amount(memory / GIB)} GiB of memory, but the largest node, {best.name}, "
            f"promises {amount(best.memory_bytes / GIB)} GiB "
            f"(memory overcommit {amount(overcommit.memory)}x)"
        )
    if cpu > max(n.cpus for n in nodes):
        best = max(nodes, key=lambda n: n.cpus)
        return (
            f"{amount(cpu)} CPUs, but the largest node, {best.name}, promises "
            f"{amount(best.cpus)} (CPU overcommit {amount(overcommit.cpu)}x)"
        )
    return (  # each part fits some node, but no node has all of them at once
        f"{amount(cpu)} CPUs, {amount(memory / GIB)} GiB and {gpus} GPU(s) on one node, "
        f"which no node has: {', '.join(_size(n) for n in nodes[:5])}"
    )


def _size(node: NodeSize) -> str:
    return (
        f"{node.name} {amount(node.cpus)} CPUs/{amount(node.memory_bytes / GIB)} GiB/"
        f"{node.gpus} GPU(s)"
    )
