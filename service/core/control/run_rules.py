"""What happens when a job's run is due while another runs, and when a failed run is
tried again: pure decisions, no store and no clock.

Concurrency (the recipe's ``concurrency_policy``), when a run is due (by its schedule
or asked for) while an earlier run of the same job has not ended:

- ``Forbid`` (the default): the new run does not start; a scheduled one is recorded as
  skipped, a manual one is refused;
- ``Replace``: the running one is stopped (recorded as replaced) and the new one starts;
- ``Allow``: the new run starts alongside, with a job process of its own (``job-<run
  number>``), its own exit code, logs, output folder, timeout and retries; at most the
  recipe's ``max_concurrent_runs`` (default :data:`DEFAULT_MOST_RUNS`) are open at once,
  and a run due beyond that is skipped (scheduled) or refused (manual), saying so.

Retries (the recipe's ``retries`` and ``retry_backoff``): a run that failed, timed out
or was lost is run again, as a new run with trigger ``retry``, until ``retries`` more
attempts were made; the n-th retry waits ``retry_backoff * 2**(n-1)``, at most
:data:`MOST_BACKOFF`. A run stopped by request or replaced is never retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

MOST_BACKOFF = timedelta(hours=1)
DEFAULT_MOST_RUNS = 5  # Allow's bound on a job's open runs when the recipe names none


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


def when_due(policy: str, running: int, most: int = DEFAULT_MOST_RUNS) -> WhenBusy:
    """What a due run does under ``policy`` while ``running`` runs of its job have not
    ended; ``most``: how many may be open at once under ``Allow``."""
    if not running:
        return WhenBusy.START
    if policy == "Allow":
        return WhenBusy.START if running < most else WhenBusy.SKIP
    if policy == "Replace":
        return WhenBusy.REPLACE
    return WhenBusy.SKIP


def why_skipped(
    policy: str, running: Sequence[int], most: int = DEFAULT_MOST_RUNS, now: bool = False
) -> str:
    """Why a run due while the runs numbered ``running`` go on does not start (the
    decision :func:`when_due` made ``SKIP``), in the past tense (a skipped due time) or,
    with ``now``, the present (a refused manual run)."""
    if policy == "Allow":
        numbers = ", ".join(str(number) for number in running)
        return (
            f"runs {numbers} {'are' if now else 'were'} still running: at most {most} at "
            "once (max_concurrent_runs, concurrency_policy Allow)"
        )
    if now:
        return f"run {running[-1]} is still running and its concurrency_policy is Forbid"
    return f"run {running[-1]} was still running (concurrency_policy Forbid)"


def retry_delay(backoff: timedelta, attempt: int) -> timedelta:
    """How long to wait before the retry that follows failed attempt ``attempt`` (1: the
    first run): ``backoff`` doubled for each earlier retry, at most :data:`MOST_BACKOFF`."""
    return min(backoff * 2 ** max(attempt - 1, 0), MOST_BACKOFF)


def retries_left(status: str, attempt: int, retries: int) -> bool:
    """Whether a run that ended with ``status`` as attempt ``attempt`` is tried again."""
    return status in RETRIED and attempt <= retries


class EndedRun(Protocol):
    """What :func:`awaiting_retry` reads of a run."""

    @property
    def number(self) -> int: ...
    @property
    def trigger(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def finished_at(self) -> datetime | None: ...


R = TypeVar("R", bound=EndedRun)


def awaiting_retry(runs: Sequence[R], retries: int) -> list[R]:
    """The runs among ``runs`` (a job's history, under ``Allow``) that ended with retries
    left and that no retry answered yet, oldest first. Each retry (attempt ``n``) answers
    the oldest earlier unanswered run of attempt ``n - 1``: with runs failing side by side,
    every failure gets its own retries."""
    waiting: list[R] = []
    for run in sorted(runs, key=lambda run: run.number):
        if run.trigger == Trigger.RETRY:
            answered = next((w for w in waiting if w.attempt == run.attempt - 1), None)
            if answered is not None:
                waiting.remove(answered)
        if run.finished_at is not None and retries_left(run.status, run.attempt, retries):
            waiting.append(run)
    return waiting
