"""One way to run a pass again and again: the control plane's background loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(
    seconds: float | Callable[[], float],
    step: Callable[[], Awaitable[object]],
    what: str,
    first_wait: bool = False,
) -> None:
    """Run ``step`` forever, ``seconds`` apart (a callable is read each time, so a
    setting changed in a test applies at once). A pass that raises is logged with
    ``what`` and tried again next time; only cancellation ends the loop."""

    def interval() -> float:
        return seconds() if callable(seconds) else seconds

    if first_wait:
        await asyncio.sleep(interval())
    while True:
        try:
            await step()
        except Exception:
            log.exception("%s failed; trying again in %ss", what, interval())
        await asyncio.sleep(interval())
