"""What happens when a job's run is due while another runs, and when a failed run is
tried again: pure decisions, no store and no clock.

Concurrency (the recipe's ``concurrency_policy``), when a run is due (by its schedule
or asked for) while an earlier run of the same job has not ended:

- ``Forbid`` (the default): the new run does not start; a scheduled one is recorded as
  skipped, a manual one is refused;
- ``Replace``: the running one is stopped (recorded as replaced) and the new one starts;
- ``Allow`` (two runs at once) is refused when the recipe is applied: a job holds one
  run's processes at a time.

Retries (the recipe's ``retries`` and ``retry_backoff``): a run that failed, timed out
or was lost is run again, as a new run with trigger ``retry``, until ``retries`` more
attempts were made; the n-th retry waits ``retry_backoff * 2**(n-1)``, at most
:data:`MOST_BACKOFF`. A run stopped by request or replaced is never retried.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

MOST_BACKOFF = timedelta(hours=1)


class RunStatus(StrEnum):
    """Where one run of a job is."""

    RUNNING = "running"  # begun: its processes are asked for (maybe still pending)
    SUCCEEDED = "succeeded"  # its program exited with code 0
    FAILED = "failed"  # exited otherwise, or could not start
    TIMED_OUT = "timed_out"  # ran past the recipe's timeout and was stopped
    LOST = "lost"  # its process vanished without an exit code (e.g. its node died)
    STOPPED = "stopped"  # stopped by request, or replaced by a newer run
    SKIPPED = "skipped"  # due while another ran (Forbid), or could not be admitted
    MISSED = "missed"  # due while the control plane was away, past the starting deadline


class Trigger(StrEnum):
    """Why a run began."""

    SCHEDULE = "schedule"
    MANUAL = "manual"  # applied, started, or "run now"
    RETRY = "retry"


RETRIED = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST)
"""Run outcomes that are tried again while retries are left."""


class WhenBusy(StrEnum):
    """What to do with a run that is due while another runs."""

    START = "start"  # nothing runs: start it
    SKIP = "skip"  # Forbid: leave the running one alone
    REPLACE = "replace"  # Replace: stop the running one, start this


def when_due(policy: str, busy: bool) -> WhenBusy:
    """What a due run does under ``policy`` when another run has (``busy``) or has not
    ended."""
    if not busy:
        return WhenBusy.START
    if policy == "Replace":
        return WhenBusy.REPLACE
    return WhenBusy.SKIP


def retry_delay(backoff: timedelta, attempt: int) -> timedelta:
    """How long to wait before the retry that follows failed attempt ``attempt`` (1: the
    first run): ``backoff`` doubled for each earlier retry, at most :data:`MOST_BACKOFF`."""
    return min(backoff * 2 ** max(attempt - 1, 0), MOST_BACKOFF)


def retries_left(status: str, attempt: int, retries: int) -> bool:
    """Whether a run that ended with ``status`` as attempt ``attempt`` is tried again."""
    return status in RETRIED and attempt <= retries
