"""What every ``titan`` command shares: its options, consoles and API client."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from service.client import Hub

console = Console()
errors = Console(stderr=True)


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


def print_rows(columns: list[str], rows: list[dict[str, Any]]) -> None:
    """``rows`` as a table of ``columns`` (a missing value shows empty)."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)
