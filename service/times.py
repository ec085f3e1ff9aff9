"""Points in time as people write them: ISO 8601, or a span back from now."""

from __future__ import annotations

import re
from datetime import UTC, datetime

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SPAN = re.compile(r"-?(\d+(?:\.\d+)?)([smhdw])")


def parse_time(text: str, now: float) -> float:
    """Epoch seconds of ``text``: an ISO 8601 time (``2026-12-07T03:00:00Z``; without a
    zone it is UTC) or a span back from ``now`` (``10m``, ``-1h``, ``30s``, ``2d``, ``1w``).
    Raises ValueError naming what is accepted."""
    cleaned = text.strip()
    span = _SPAN.fullmatch(cleaned)
    if span:
        return now - float(span.group(1)) * UNITS[span.group(2)]
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2026-12-07T03:00:00Z) "
            "or a span back from now (30s, 10m, 1h, 2d, 1w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
