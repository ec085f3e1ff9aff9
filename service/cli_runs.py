"""``titan runs`` and ``titan run``: a job's run history, and a run started now."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from service.cli_common import Owner, Ref, console, hub, print_rows, ref

ENDED = {"succeeded", "failed", "timed_out", "lost", "stopped", "skipped", "missed"}


def add_runs_commands(app: typer.Typer) -> None:
    """Add ``titan runs`` and ``titan run`` to ``app``."""
    app.command("runs")(runs)
    app.command("run")(run)


def _job(resource: str, owner: str | None) -> str:
    target = ref(resource, owner)
    if target.type != "job":
        raise typer.BadParameter(f"runs are a job's: give job/NAME, not {resource}")
    return resource


def runs(
    resource: Ref,
    owner: Owner = None,
    limit: Annotated[int, typer.Option(help="newest runs to show")] = 20,
) -> None:
    """List a job's runs, newest first: trigger, status, due time, start, end, exit code.
    `titan logs job/NAME --run N` prints one run's output."""
    found = hub().runs(ref(_job(resource, owner), owner), limit=limit)
    if not found:
        console.print(f"{resource} has no runs yet")
        return
    columns = [
        "number",
        "trigger",
        "status",
        "attempt",
        "scheduled_for",
        "started_at",
        "finished_at",
        "exit_code",
        "reason",
    ]
    print_rows(columns, found)


def run(
    resource: Ref,
    owner: Owner = None,
    wait: Annotated[bool, typer.Option(help="follow the run until it ends")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 600,
) -> None:
    """Start a run of a job now (trigger: manual). With --wait: until it ends; exit 1
    unless it succeeded."""
    target = ref(_job(resource, owner), owner)
    begun = hub().run(target)
    number = begun["number"]
    console.print(f"{resource}: run {number} begun")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    current = begun
    while current["status"] not in ENDED:
        if time.monotonic() > deadline:
            console.print(f"{resource}: run {number} still {current['status']} after {timeout:g}s")
            raise typer.Exit(1)
        time.sleep(1)
        current = hub().job_run(target, number)
    console.print(f"{resource}: run {number} {current['status']}: {current['reason']}")
    if current["status"] != "succeeded":
        raise typer.Exit(1)
