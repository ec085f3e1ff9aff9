"""Slurm's own command-line tools, called and read: sbatch, scontrol, squeue, scancel.

The command-line tools are Slurm's dependable interface here (slurmrestd will
not run as root and pyslurm has no build for Slurm 22.05). Every call runs as
a subprocess with a time limit, off the event loop; a tool that fails raises
:class:`SlurmError` with Slurm's own message, which the user sees.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from service.backends.nodes import GPU, Inventory
from service.errors import BackendError

# States of a job that still holds (or will hold) a node; any other has ended.
WAITING_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING_STATES = {"RUNNING", "CONFIGURING", "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT"}
# What ended jobs say, in a user's words (Slurm's own state names otherwise).
ENDINGS = {
    "CANCELLED": "cancelled in Slurm (scancel)",
    "TIMEOUT": "its Slurm time limit was reached",
    "OUT_OF_MEMORY": "killed: out of memory (its Slurm --mem)",
    "NODE_FAIL": "its Slurm node failed",
    "BOOT_FAIL": "its Slurm node failed to boot",
    "PREEMPTED": "preempted by Slurm",
    "DEADLINE": "its Slurm deadline passed",
}
# Node states (any of a node's flags) where Slurm places no new work.
UNSCHEDULABLE = {
    "DRAIN",
    "DRAINED",
    "DRAINING",
    "DOWN",
    "FAIL",
    "FAILING",
    "NOT_RESPONDING",
    "FUTURE",
    "POWERED_DOWN",
    "POWERING_DOWN",
    "INVAL",
    "MAINTENANCE",
    "REBOOT_ISSUED",
}
_FIELD = re.compile(r"\s+(?=[A-Za-z][A-Za-z_:/.]*=)")


class SlurmError(BackendError):
    """A Slurm tool failed; the message is Slurm's own."""


@dataclass(frozen=True)
class Job:
    """One Slurm job as ``scontrol show job`` describes it."""

    id: str
    state: str  # Slurm's JobState: PENDING, RUNNING, COMPLETED, CANCELLED...
    reason: str  # why it waits (Resources, Priority...), or "None"
    exit_code: int | None  # ExitCode's first part once it ended
    signal: int | None  # ExitCode's second part: the signal that ended it, if any
    node: str  # where it runs (its batch host); "" while it waits
    gpus: str  # the GPU indices Slurm bound on that node ("0", "0-1"); "" if none

    @property
    def waiting(self) -> bool:
        """Queued: not started yet."""
        return self.state in WAITING_STATES

    @property
    def running(self) -> bool:
        """Started and not ended."""
        return self.state in RUNNING_STATES


async def call(*argv: str, user: str | None = None, timeout: float = 30.0) -> str:
    """Run a Slurm tool (as the OS account ``user`` if given); its standard output.

    Raises SlurmError with the tool's own message when it fails or hangs.
    """
    command = ["runuser", "-u", user, "--", *argv] if user else list(argv)
    try:
        child = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_tool_environment(),
        )
    except OSError as exc:
        raise SlurmError(f"{argv[0]} could not run here ({exc}): is Slurm installed?") from None
    try:
        out, err = await asyncio.wait_for(child.communicate(), timeout)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise SlurmError(f"{argv[0]} did not answer within {timeout:.0f}s") from None
    if child.returncode != 0:
        said = (err or out).decode(errors="replace").strip()
        raise SlurmError(said.removeprefix(f"{argv[0]}: ").removeprefix("error: ") or argv[0])
    return out.decode(errors="replace")


def _tool_environment() -> dict[str, str]:
    """What the tools see: a fixed PATH and Slurm's own settings, nothing else of the
    control plane's (sbatch hands its environment to the job)."""
    import os

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    env.update({k: v for k, v in os.environ.items() if k == "SLURM_CONF"})
    return env


def fields(line: str) -> dict[str, str]:
    """One record of ``scontrol show ... -o`` as key → value."""
    found: dict[str, str] = {}
    for part in _FIELD.split(line.strip()):
        key, _, value = part.partition("=")
        found.setdefault(key, value)
    return found


async def job(job_id: str) -> Job | None:
    """The job ``job_id``; None once Slurm has forgotten it (ended MinJobAge ago)."""
    try:
        text = await call("scontrol", "show", "job", "-d", "-o", job_id)
    except SlurmError as exc:
        if "Invalid job id" in str(exc):
            return None
        raise
    return parse_job(text) if text.strip() else None


def parse_job(text: str) -> Job:
    """A job from its ``scontrol show job -d -o`` line."""
    record = fields(text)
    code, _, signal = record.get("ExitCode", "").partition(":")
    bound = re.search(r"GRES=\S*?gpu[^\s(]*\(IDX:([^)]*)\)", text)
    node = record.get("BatchHost", "")
    return Job(
        id=record.get("JobId", ""),
        state=record.get("JobState", "UNKNOWN"),
        reason=record.get("Reason", "None"),
        exit_code=int(code) if code.isdigit() else None,
        signal=int(signal) if signal.isdigit() else None,
        node="" if node in ("", "(null)") else node,
        gpus=bound.group(1) if bound else "",
    )


async def jobs_named(prefix: str) -> list[tuple[str, str, str]]:
    """(job id, state, comment) of every job not yet ended whose name starts with ``prefix``."""
    text = await call("squeue", "-h", "-o", "%i|%T|%j|%k")
    found = []
    for line in text.splitlines():
        job_id, state, name, comment = [*line.split("|", 3), "", "", ""][:4]
        if name.startswith(prefix):
            found.append((job_id, state, comment))
    return found


async def nodes() -> list[Inventory]:
    """Every node of the cluster as ``scontrol show node`` describes it."""
    text = await call("scontrol", "show", "node", "-o")
    return [parse_node(line) for line in text.splitlines() if line.startswith("NodeName=")]


def parse_node(line: str) -> Inventory:
    """A node from its ``scontrol show node -o`` line: CPUs, memory, GPUs (from its
    GRES: a count, and the type where configured), address and state."""
    record = fields(line)
    name = record["NodeName"]
    flags = set(record.get("State", "UNKNOWN").upper().split("+"))
    state = "+".join(sorted(flags)).lower()
    reason = record.get("Reason", "")
    count, model = gpu_gres(record.get("Gres", ""))
    return Inventory(
        name=name,
        cpus=float(record.get("CPUTot", "0") or 0),
        memory_bytes=int(record.get("RealMemory", "0") or 0) * 1024**2,
        gpus=[GPU(index, f"{name}/gpu{index}", model, 0) for index in range(count)],
        address=record.get("NodeAddr", name),
        state=state,
        schedulable=not flags & UNSCHEDULABLE,
        reason="" if reason in ("", "(null)") else reason,
    )


def gpu_gres(gres: str) -> tuple[int, str]:
    """How many GPUs a GRES string (``gpu:2``, ``gpu:a100:4(S:0-1)``) names, and their type."""
    count, model = 0, ""
    for item in gres.split(","):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if parts[0] != "gpu" or not parts[-1].isdigit():
            continue
        count += int(parts[-1])
        model = parts[1] if len(parts) == 3 else model
    return count, model or "gpu (Slurm GRES)"
