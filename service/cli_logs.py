"""``titan logs``: print a resource's output, literally, and follow it across restarts."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.text import Text

from service.cli_common import Owner, Ref, console, errors, hub, ref
from service.client import Hub, NotFoundError, ResourceRef
from service.times import parse_time

DEFAULT_TAIL = 100


def add_logs_command(app: typer.Typer) -> None:
    """Add ``titan logs`` to ``app``."""
    app.command("logs")(logs)


def logs(
    resource: Ref,
    owner: Owner = None,
    process: Annotated[str | None, typer.Option(help="only this process")] = None,
    tail: Annotated[
        int | None,
        typer.Option(help=f"last lines to show (default: {DEFAULT_TAIL}; with --since: all)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="only lines since: ISO 8601 (2026-12-07T03:00:00Z) or back from "
            "now (30s, 10m, 2h, 1d)"
        ),
    ] = None,
    timestamps: Annotated[
        bool, typer.Option("--timestamps", "-t", help="prefix each line with its UTC time")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="keep printing new output, across restarts"),
    ] = False,
    run: Annotated[
        int | None,
        typer.Option("--run", help="a job's run (`titan runs`), also one that ended"),
    ] = None,
) -> None:
    """Print the output of a resource's processes, each line as written (never folded)."""
    if run is not None and follow:
        raise typer.BadParameter("give --run or --follow, not both", param_hint="--run")
    if since is not None:
        try:
            parse_time(since, time.time())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--since") from None
    if tail is None and since is None:
        tail = DEFAULT_TAIL
    reader = LogFollower(hub(), ref(resource, owner), process, timestamps)
    reader.first(tail, since, run)
    while follow:
        time.sleep(1)
        reader.more()


@dataclass
class Place:
    """How far one process's output was printed: which start of it, up to which byte."""

    run: str | None
    offset: int


class LogFollower:
    """Prints a resource's output once, then what comes after; a process that starts
    again (a new run) is read from its beginning, so nothing is lost or repeated."""

    def __init__(
        self, client: Hub, target: ResourceRef, process: str | None, timestamps: bool
    ) -> None:
        self.client, self.target = client, target
        self.process, self.timestamps = process, timestamps
        self.places: dict[str, Place] = {}

    def first(self, tail: int | None, since: str | None, job_run: int | None = None) -> None:
        """Print the last ``tail`` lines (or those ``since``) of each process (of a job's
        run ``job_run``: its job process)."""
        found = self.client.logs(
            self.target,
            self.process,
            tail=tail,
            since=since,
            timestamps=self.timestamps,
            job_run=job_run,
        )
        for name, chunk in found["processes"].items():
            self._show(name, chunk)

    def more(self) -> None:
        """Print what each process wrote since the last call."""
        for item in self.client.get(self.target)["processes"]:
            name = item["name"]
            if self.process not in (None, name):
                continue
            place = self.places.get(name, Place(None, 0))
            chunk = self._read(name, place.offset)
            if chunk is not None and place.run is not None and chunk.get("run") != place.run:
                errors.print(f"{name}: started again; its new output follows", highlight=False)
                chunk = self._read(name, 0)  # the offset was the previous run's
            if chunk is not None:
                self._show(name, chunk)

    def _read(self, name: str, offset: int) -> dict[str, Any] | None:
        try:
            found = self.client.logs(self.target, name, offset=offset, timestamps=self.timestamps)
        except NotFoundError:
            self.client.get(self.target)  # the resource itself gone: that ends the command
            return None  # the process is between runs: nothing to read yet
        chunk: dict[str, Any] | None = found["processes"].get(name)
        return chunk

    def _show(self, name: str, chunk: dict[str, Any]) -> None:
        for line in chunk["text"].splitlines():
            print_line(name, line)
        sys.stdout.flush()  # a follower's reader (a pipe, a file) sees each batch at once
        self.places[name] = Place(chunk.get("run"), chunk["offset"])


def print_line(process: str, line: str) -> None:
    """One output line after its process's name, as written: never folded, no markup."""
    if not console.is_terminal:
        sys.stdout.write(f"{process} {line}\n")
        return
    console.print(Text.assemble((process, "dim"), " ", line), soft_wrap=True, highlight=False)
