"""Choosing a port for a server before it starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from service.errors import BackendError


def free_port_outside_ephemeral_range(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, outside the kernel's ephemeral range.

    Outgoing connections never take such a port, so it stays free until the
    server binds it; should another server take it first, that start fails and
    is retried with a new port.
    """
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    candidates = list(range(10000, low)) + list(range(high + 1, 65536))
    random.shuffle(candidates)
    for port in candidates[:200]:
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise BackendError(f"no free port outside the ephemeral range on {host}")
