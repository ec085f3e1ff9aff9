"""What every ``titan`` command shares: its options, consoles and API client."""

from __future__ import annotations

from rich.console import Console

from service.client import Hub

console = Console()
errors = Console(stderr=True)


class State:
    """Options every command shares."""

    url: str | None = None
    token: str | None = None
    debug: bool = False


def hub() -> Hub:
    """A client from the command-line options and the environment."""
    return Hub(State.url, State.token)
