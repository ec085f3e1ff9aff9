"""What every ``titan`` command shares: its options, consoles and API client."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from service.client import Hub, ResourceRef
from service.json_text import syntax_problem

FULL_WIDTH = 1_000_000  # wide enough that no line or table is ever folded


def make_console(stderr: bool = False) -> Console:
    """A console for standard output (or error). On a terminal it fits its width; when
    redirected it folds nothing (rich would assume 80 columns): a long URL or log line
    stays one line, whole."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=FULL_WIDTH, soft_wrap=True)


console = make_console()
errors = make_console(stderr=True)


class State:
    """Options every command shares."""

    url: str | None = None
    token: str | None = None
    debug: bool = False
    client: Hub | None = None
    client_options: tuple[str | None, str | None] = (None, None)


def hub() -> Hub:
    """The command's client, from the command-line options and the environment (one per
    process, so a command's calls share its connections)."""
    key = (State.url, State.token)
    if State.client is None or State.client_options != key:
        State.client, State.client_options = Hub(*key), key
    return State.client


def read_recipe(path: str) -> dict[str, Any]:
    """The JSON recipe in ``path`` (``-`` for standard input); a usage error naming the
    line and column where it is not JSON (and how to convert YAML)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        name = "standard input" if path == "-" else path
        raise typer.BadParameter(syntax_problem(name, text, exc)) from None
    return data


def print_rows(columns: list[str], rows: list[dict[str, Any]]) -> None:
    """``rows`` as a table of ``columns`` (a missing value shows empty)."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


def ref(text: str, owner: str | None = None) -> ResourceRef:
    """A TYPE/NAME argument."""
    try:
        return ResourceRef.parse(text, owner)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


Ref = Annotated[str, typer.Argument(help="TYPE/NAME, e.g. cluster/my-cluster")]
Owner = Annotated[str | None, typer.Option(help="owner (admins; default: you)")]
