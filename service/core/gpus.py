"""GPUs of this node and who holds them: a GPU is never handed to two processes.

The inventory comes from NVML (nvidia-ml-py, imported lazily); a machine
without a driver or without the package has no GPUs. Allocations are the
``gpus`` of recorded processes, so they survive a control-plane restart.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import Process, Resource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GPU:
    """One GPU of the node's inventory."""

    index: int
    uuid: str
    model: str
    memory_bytes: int


class GPUsBusy(Exception):
    """Not enough free GPUs now; the resource waits (pending), it has not failed."""


def node_name() -> str:
    """The name this node reports in messages."""
    return socket.gethostname()


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
            uuid = pynvml.nvmlDeviceGetUUID(device)
            name = pynvml.nvmlDeviceGetName(device)
            memory = pynvml.nvmlDeviceGetMemoryInfo(device).total
            gpus.append(GPU(index, _text(uuid), _text(name), int(memory)))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def allocate(session: Session, inventory: list[GPU], count: int) -> list[str]:
    """UUIDs of ``count`` GPUs no process holds; GPUsBusy naming the holders otherwise."""
    holders: dict[str, str] = {}
    rows = session.execute(
        select(Process.gpus, Resource.owner, Resource.type, Resource.name)
        .join(Resource, Process.resource_id == Resource.id)
        .where(Process.state != "exited")
    )
    for gpus, owner, kind, name in rows:
        for uuid in gpus or []:
            holders[uuid] = f"{owner}/{kind}/{name}"
    free = [gpu.uuid for gpu in inventory if gpu.uuid not in holders]
    if len(free) < count:
        held = sorted(set(holders.values()))
        suffix = f" (held by {', '.join(held)})" if held else ""
        plural = "s" if count != 1 else ""
        raise GPUsBusy(
            f"waiting for {count} GPU{plural}: {len(free)} of {len(inventory)} free "
            f"on node {node_name()}{suffix}"
        )
    return free[:count]
