"""Waiting in tests for what happens on its own time (a process, a server, a scheduler)."""

from __future__ import annotations

import time
from typing import Any


def wait_for(check: Any, timeout: float = 60, every: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"gave up waiting; last answer: {answer!r}"
        time.sleep(every)
