"""Nodes as backends report them: the machines processes run on and what each offers.

A backend names its nodes (:meth:`Backend.nodes`): local and docker their one
host, Slurm every node of its cluster, with the state Slurm gives it. The
control plane records them and shows them (``titan nodes``); where Titan is the
only allocator (local, docker) its ledger places processes on that one node.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

import psutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GPU:
    """One GPU of a node (``uuid`` and ``model`` as far as the backend knows them)."""

    index: int
    uuid: str
    model: str
    memory_bytes: int


@dataclass(frozen=True)
class Inventory:
    """What a node offers, and whether new work may go there.

    ``state`` is in the backend's own words (Slurm: ``idle``, ``mixed``,
    ``allocated``, ``drained``, ``down``...); ``schedulable`` is False where the
    backend will place nothing new on it (drained, down).
    """

    name: str
    cpus: float
    memory_bytes: int
    gpus: list[GPU] = field(default_factory=list)
    address: str = ""
    state: str = "up"
    schedulable: bool = True
    reason: str = ""  # why it is not schedulable, in the backend's words


def local_inventory() -> Inventory:
    """This machine: its CPUs, memory and the GPUs NVML sees (none without a driver)."""
    return Inventory(
        name=socket.gethostname(),
        cpus=float(os.cpu_count() or 1),
        memory_bytes=int(psutil.virtual_memory().total),
        gpus=local_gpus(),
        address="127.0.0.1",
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
