"""User processes share the CPU without starving the control plane.

Twenty idle clusters take most of two cores; at equal priority the API
then answers in seconds. Every process the local backend starts is therefore
put in one cgroup whose CPU weight (``TITAN_USER_CPU_SHARES``, against the
control plane's 1024) bounds what all of them together get when the CPU is
contended, and they may still use every idle cycle. Where no cgroup can be
made (no writable cpu controller), each process gets a lower priority instead:
nice 10 for it and for its session's autogroup (a new session is its own
autogroup, where plain nice values would not count against the control plane).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
CGROUP_NAME = "titan-users"
NICE = 10
V1_CPU = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")


class UserCpuShare:
    """Where user processes go so that together they weigh ``shares`` against 1024."""

    def __init__(self, shares: int) -> None:
        self.shares = shares
        self.cgroup = _make_cgroup(shares)
        how = f"cgroup {self.cgroup}" if self.cgroup else f"nice {NICE}"
        log.info("user processes share the CPU through %s (weight %s of 1024)", how, shares)

    def confine(self, pid: int) -> None:
        """Put process ``pid`` (and the children it starts from now on) in the users' share;
        best effort: a process that is already gone is left alone."""
        if self.cgroup is not None:
            try:
                (self.cgroup / "cgroup.procs").write_text(str(pid))
                return
            except OSError as exc:
                log.warning("could not move pid %s into %s (%s); renicing", pid, self.cgroup, exc)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, NICE)
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(NICE))


def _make_cgroup(shares: int) -> Path | None:
    """The users' cgroup with its weight set, or None where none can be made."""
    v1 = V1_CPU / CGROUP_NAME
    v2 = V2_ROOT / CGROUP_NAME
    try:
        if (V1_CPU / "cpu.shares").exists():
            v1.mkdir(exist_ok=True)
            (v1 / "cpu.shares").write_text(str(shares))
            return v1
        if (V2_ROOT / "cgroup.controllers").exists():
            controllers = (V2_ROOT / "cgroup.subtree_control").read_text().split()
            if "cpu" not in controllers:
                (V2_ROOT / "cgroup.subtree_control").write_text("+cpu")
            v2.mkdir(exist_ok=True)
            # cgroup v2 weights are 1..10000 with 100 for a plain process: scale from 1024.
            (v2 / "cpu.weight").write_text(str(max(1, min(10_000, shares * 100 // 1024))))
            return v2
    except OSError as exc:
        log.info("no cgroup for user processes here (%s)", exc)
    return None
