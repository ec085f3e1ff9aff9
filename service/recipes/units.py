"""Sizes, durations and schedules as users write them: ``"4GiB"``, ``"90m"``, ``"never"``,
``"30 2 * * *"``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_MEMORY_FACTORS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1024**4,
    "tib": 1024**4,
}
MAX_BYTES = 2**63 - 1  # what a 64-bit column holds: 8 EiB
MAX_SECONDS = 3650 * 86400  # ten years; longer is "never"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_FACTORS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_memory(text: str) -> int:
    """Bytes in ``text`` (``"512MiB"``, ``"2GB"``, ``"1073741824"``); ValueError if
    unreadable or over 8EiB."""
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"{text[:40]!r} is not a size; write e.g. '512MiB' or '4GiB'")
    number, unit = match.groups()
    size = float(number) * _MEMORY_FACTORS[(unit or "").lower()]  # inf for 309+ digits
    if size > MAX_BYTES:
        raise ValueError(f"{text[:40]!r} is too large a size; at most 8EiB")
    return int(size)


def parse_duration(text: str) -> int | None:
    """Seconds in ``text`` (``"30m"``, ``"1h"``, ``"2d"``), or None for ``"never"``;
    ValueError if unreadable or over ten years."""
    if text.strip().lower() == "never":
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{text[:40]!r} is not a duration; write e.g. '30m', '1h', '2d' or 'never'"
        )
    number, unit = match.groups()
    # Digits counted before converting: int() of thousands of digits raises, and is slow.
    seconds = MAX_SECONDS + 1 if len(number) > 12 else int(number) * _DURATION_FACTORS[unit]
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text[:40]!r} is too long a duration; at most 3650d, or 'never'")
    return seconds


def check_cron(expression: str) -> str:
    """``expression`` if it is a 5-field cron expression; ValueError saying why not."""
    if len(expression.split()) != 5:
        raise ValueError(
            "must be a 5-field cron expression: minute hour day-of-month month day-of-week, "
            "e.g. '30 2 * * *' (daily at 02:30)"
        )
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"is not a valid cron expression ({exc})") from None
    return expression
