"""The allocation ledger: what each node has, who holds what, and whether a request fits.

A node's inventory (CPUs, memory, GPUs from NVML) is recorded at start. Every
process start takes an allocation — CPU, memory and specific GPU UUIDs — in
the same transaction that checks capacity, so a GPU is never given away
twice. Allocations are the columns of recorded processes: they survive a
control-plane restart and are freed when the process row goes.

A GPU is held whole or in shares (``gpu: 0.5`` gives a process half of one
GPU): the shares on one GPU never add up to more than 1. A share goes to the
fullest GPU it still fits on, so whole GPUs stay free for whole requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.backends.nodes import GPU, Inventory
from service.core.control.state import Phase
from service.database.models import Node, Process, Resource, utcnow

__all__ = ["GPU", "Inventory"]  # what nodes offer: defined with the backends that report them


EPSILON = 1e-9  # shares are sums of floats: 0.1 + 0.2 must still fit beside 0.7


@dataclass(frozen=True)
class Request:
    """What one or more processes ask for: whole GPUs, and shares of one GPU each."""

    cpu: float = 0.0
    memory_bytes: int = 0
    gpus: int = 0
    shares: tuple[float, ...] = ()  # each in (0, 1): a part of one GPU

    @property
    def gpu_total(self) -> float:
        """Whole GPUs plus shares: what counts against a GPU quota."""
        return self.gpus + sum(self.shares)


@dataclass(frozen=True)
class Holding:
    """What one live process holds, and whose it is (``owner/type/name``)."""

    holder: str
    cpu: float
    memory_bytes: int
    gpus: tuple[str, ...] = ()
    gpu_share: float = 1.0  # of each GPU in ``gpus``
    node: str | None = None  # where it landed, where the backend said so

    @property
    def owner(self) -> str:
        """The user or group the holding resource belongs to."""
        return self.holder.split("/", 1)[0]

    @property
    def gpu_total(self) -> float:
        """GPUs held, shares counted as parts."""
        return len(self.gpus) * self.gpu_share


@dataclass(frozen=True)
class Overcommit:
    """How far requests may exceed the physical CPUs and memory (GPUs: never)."""

    cpu: float = 1.0
    memory: float = 1.0


class Unplaceable(Exception):
    """The request does not fit now; the resource waits (pending), it has not failed."""


def place(
    inventory: Inventory, holdings: list[Holding], request: Request, overcommit: Overcommit
) -> list[str]:
    """The GPU UUIDs to give ``request`` if it fits beside ``holdings``; Unplaceable if not.

    Whole GPUs are the lowest wholly free ones; each share goes to the fullest
    GPU it fits on (lowest index on a tie). Pure: the same inputs always give
    the same answer.
    """
    used = gpu_use(inventory, holdings)
    chosen = _whole_gpus(inventory, holdings, used, request.gpus)
    for share in sorted(request.shares, reverse=True):
        chosen.append(_shared_gpu(inventory, holdings, used, share))
    _check_cpu_and_memory(inventory, holdings, request, overcommit)
    return chosen


def gpu_use(inventory: Inventory, holdings: list[Holding]) -> dict[str, float]:
    """How much of each GPU of the node is held (0 to 1)."""
    shares = held_shares(holdings)
    return {gpu.uuid: shares.get(gpu.uuid, 0.0) for gpu in inventory.gpus}


def held_shares(holdings: list[Holding]) -> dict[str, float]:
    """How much of each GPU someone holds, by UUID."""
    used: dict[str, float] = {}
    for holding in holdings:
        for uuid in holding.gpus:
            used[uuid] = used.get(uuid, 0.0) + holding.gpu_share
    return used


def _whole_gpus(
    inventory: Inventory, holdings: list[Holding], used: dict[str, float], count: int
) -> list[str]:
    free = [g.uuid for g in inventory.gpus if used[g.uuid] <= EPSILON]
    if count > len(free):
        raise Unplaceable(
            _waiting(
                count,
                "GPU",
                len(free),
                len(inventory.gpus),
                inventory.name,
                _gpu_holders(holdings),
            )
        )
    for uuid in free[:count]:
        used[uuid] = 1.0
    return free[:count]


def _shared_gpu(
    inventory: Inventory, holdings: list[Holding], used: dict[str, float], share: float
) -> str:
    fitting = [g.uuid for g in inventory.gpus if used[g.uuid] + share <= 1.0 + EPSILON]
    if not fitting:
        free = max((1.0 - u for u in used.values()), default=0.0)
        held = _gpu_holders(holdings)
        raise Unplaceable(
            f"waiting for {share:g} of a GPU: at most {max(free, 0.0):.2g} of one GPU is free "
            f"on node {inventory.name}"
            + (
                f" (held by {', '.join(held[:5])}{', ...' if len(held) > 5 else ''})"
                if held
                else ""
            )
        )
    best = max(fitting, key=lambda uuid: used[uuid])  # the fullest; max keeps the first on ties
    used[best] += share
    return best


def _check_cpu_and_memory(
    inventory: Inventory, holdings: list[Holding], request: Request, overcommit: Overcommit
) -> None:
    cpu_limit = inventory.cpus * overcommit.cpu
    cpu_used = sum(h.cpu for h in holdings)
    if request.cpu > 0 and cpu_used + request.cpu > cpu_limit + EPSILON:
        raise Unplaceable(
            _waiting(
                request.cpu,
                "CPU",
                max(0.0, cpu_limit - cpu_used),
                cpu_limit,
                inventory.name,
                _holders(holdings, "cpu"),
            )
        )
    memory_limit = int(inventory.memory_bytes * overcommit.memory)
    memory_used = sum(h.memory_bytes for h in holdings)
    if request.memory_bytes > 0 and memory_used + request.memory_bytes > memory_limit:
        gib = 1024**3
        raise Unplaceable(
            _waiting(
                request.memory_bytes / gib,
                "GiB of memory",
                max(0.0, (memory_limit - memory_used) / gib),
                memory_limit / gib,
                inventory.name,
                _holders(holdings, "memory_bytes"),
            )
        )


def _gpu_holders(holdings: list[Holding]) -> list[str]:
    return sorted({h.holder for h in holdings if h.gpus})


def _holders(holdings: list[Holding], attribute: str) -> list[str]:
    return sorted({h.holder for h in holdings if getattr(h, attribute) > 0})


def _waiting(
    wanted: float, unit: str, free: float, total: float, node: str, holders: list[str]
) -> str:
    plural = "s" if unit in ("GPU", "CPU") and wanted != 1 else ""
    held = f" (held by {', '.join(holders[:5])}{', ...' if len(holders) > 5 else ''})"
    return (
        f"waiting for {amount(wanted)} {unit}{plural}: {amount(free)} of {amount(total)} "
        f"free on node {node}" + (held if holders else "")
    )


def amount(value: float) -> str:
    """A count as messages show it: ``2``, ``0.25``, ``23.5`` (at most two decimals)."""
    return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0")


def holdings(session: Session) -> list[Holding]:
    """What every live process holds now."""
    rows = session.execute(
        select(
            Process.cpu,
            Process.memory_bytes,
            Process.gpus,
            Process.gpu_share,
            Resource.owner,
            Resource.type,
            Resource.name,
            Process.node,
        )
        .join(Resource, Process.resource_id == Resource.id)
        .where(Process.state != Phase.EXITED)
    )
    return [
        Holding(f"{owner}/{kind}/{name}", cpu or 0.0, memory or 0, tuple(gpus or ()), share, node)
        for cpu, memory, gpus, share, owner, kind, name, node in rows
    ]


def record_nodes(session: Session, inventories: list[Inventory]) -> None:
    """Store the nodes the backend reports now (refreshing each), and forget the others."""
    names = {inventory.name for inventory in inventories}
    for node in session.scalars(select(Node)):
        if node.name not in names:
            session.delete(node)
    for inventory in inventories:
        node = session.get(Node, inventory.name) or Node(name=inventory.name)
        seen = {
            "cpus": inventory.cpus,
            "memory_bytes": inventory.memory_bytes,
            "gpus": [g.__dict__ for g in inventory.gpus],
            "address": inventory.address,
            "state": inventory.state,
            "schedulable": inventory.schedulable,
            "reason": inventory.reason[:500],
        }
        if any(getattr(node, key) != value for key, value in seen.items()):
            for key, value in seen.items():
                setattr(node, key, value)
            node.updated_at = utcnow()  # when it last changed
            session.add(node)


def node_report(session: Session, overcommit: Overcommit) -> list[dict[str, Any]]:
    """Every node with its capacity, what it promises (capacity times the overcommit: what
    requests may add up to), what is allocated, and who holds each GPU."""
    held = holdings(session)
    gpu_holders: dict[str, list[str]] = {}
    for holding in held:
        for uuid in holding.gpus:
            gpu_holders.setdefault(uuid, []).append(holding.holder)
    report = []
    used = held_shares(held)
    nodes = list(session.scalars(select(Node).order_by(Node.name)))
    for node in nodes:
        # Where the backend did not say where a process landed, there is one node.
        here = [h for h in held if h.node == node.name or (h.node is None and len(nodes) == 1)]
        report.append(
            {
                "name": node.name,
                "address": node.address,
                "state": node.state,
                "schedulable": node.schedulable,
                "reason": node.reason or None,
                "cpus": node.cpus,
                "memory_bytes": node.memory_bytes,
                "overcommit": {"cpu": overcommit.cpu, "memory": overcommit.memory},
                "promised": {
                    "cpu": node.cpus * overcommit.cpu,
                    "memory_bytes": int(node.memory_bytes * overcommit.memory),
                },
                "allocated": {
                    "cpu": sum(h.cpu for h in here),
                    "memory_bytes": sum(h.memory_bytes for h in here),
                    "gpus": sum(h.gpu_total for h in here),
                },
                "gpus": [
                    {
                        **gpu,
                        "holder": ", ".join(gpu_holders.get(gpu["uuid"], [])) or None,
                        "used": round(used.get(gpu["uuid"], 0.0), 6),
                    }
                    for gpu in node.gpus
                ],
                "updated_at": node.updated_at.isoformat(),
            }
        )
    return report
