"""Choosing a port for a server before it starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from service.errors import BackendError


def free_port_outside_ephemeral_range(
    host: str = "127.0.0.1", count: int = 1, probe: bool = True
) -> int:
    """A port free on ``host`` now (the first of ``count`` free in a row), outside the
    kernel's ephemeral range.

    Outgoing connections never take such a port, so it stays free until the
    server binds it; should another server take it first, that start fails and
    is retried with a new port. ``probe=False``: a port of that range chosen at
    random, for servers on another host (a Slurm node) this one cannot probe.
    """
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    candidates = list(range(10000, low - count)) + list(range(high + 1, 65536 - count))
    random.shuffle(candidates)
    for port in candidates[:200]:
        if not probe or all(_free(host, port + offset) for offset in range(count)):
            return port
    raise BackendError(f"no {count} free port(s) outside the ephemeral range on {host}")


def free_ports(host: str, wanted: dict[str, int], probe: bool = True) -> dict[str, int]:
    """For each name, the first of ``wanted[name]`` free ports in a row on ``host`` (see
    ``free_port_outside_ephemeral_range`` for ``probe``); no two names overlap."""
    chosen: dict[str, int] = {}
    taken: set[int] = set()
    for name, count in wanted.items():
        for _ in range(50):
            first = free_port_outside_ephemeral_range(host, count, probe)
            block = set(range(first, first + count))
            if not block & taken:
                break
        else:
            raise BackendError(f"no {count} free port(s) in a row on {host}")
        chosen[name] = first
        taken |= block
    return chosen


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
