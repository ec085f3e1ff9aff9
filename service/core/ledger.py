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

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import psutil
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import Node, Process, Resource, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GPU:
    """One GPU of a node."""

    index: int
    uuid: str
    model: str
    memory_bytes: int


@dataclass(frozen=True)
class Inventory:
    """What a node offers."""

    name: str
    cpus: float
    memory_bytes: int
    gpus: list[GPU] = field(default_factory=list)


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
        )
        .join(Resource, Process.resource_id == Resource.id)
        .where(Process.state != "exited")
    )
    return [
        Holding(f"{owner}/{kind}/{name}", cpu or 0.0, memory or 0, tuple(gpus or ()), share)
        for cpu, memory, gpus, share, owner, kind, name in rows
    ]


def local_inventory() -> Inventory:
    """This machine: its CPUs, memory and the GPUs NVML sees (none without a driver)."""
    return Inventory(
        name=socket.gethostname(),
        cpus=float(os.cpu_count() or 1),
        memory_bytes=int(psutil.virtual_memory().total),
        gpus=local_gpus(),
    )


def local_gpus() -> list[GPU]:
    """The GPUs NVML sees here; [] where there is no NVIDIA driver or no nvidia-ml-py."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.info("no GPUs on this node (NVML: %s)", exc)
        return []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            device = pynvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                GPU(
                    index=index,
                    uuid=_text(pynvml.nvmlDeviceGetUUID(device)),
                    model=_text(pynvml.nvmlDeviceGetName(device)),
                    memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(device).total),
                )
            )
        return gpus
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def record_node(session: Session, inventory: Inventory) -> None:
    """Store (or refresh) the node's inventory."""
    node = session.get(Node, inventory.name) or Node(name=inventory.name)
    node.cpus = inventory.cpus
    node.memory_bytes = inventory.memory_bytes
    node.gpus = [g.__dict__ for g in inventory.gpus]
    node.updated_at = utcnow()
    session.add(node)


def node_report(session: Session) -> list[dict[str, Any]]:
    """Every node with its capacity, what is allocated, and who holds each GPU."""
    held = holdings(session)
    gpu_holders: dict[str, list[str]] = {}
    for holding in held:
        for uuid in holding.gpus:
            gpu_holders.setdefault(uuid, []).append(holding.holder)
    report = []
    used = held_shares(held)
    for node in session.scalars(select(Node).order_by(Node.name)):
        report.append(
            {
                "name": node.name,
                "cpus": node.cpus,
                "memory_bytes": node.memory_bytes,
                "allocated": {
                    "cpu": sum(h.cpu for h in held),
                    "memory_bytes": sum(h.memory_bytes for h in held),
                    "gpus": sum(h.gpu_total for h in held),
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
