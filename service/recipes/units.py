"""Sizes and durations as users write them: ``"4GiB"``, ``"90m"``, ``"never"``."""

from __future__ import annotations

import re

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
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_FACTORS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_memory(text: str) -> int:
    """Bytes in ``text`` (``"512MiB"``, ``"2GB"``, ``"1073741824"``); ValueError if unreadable."""
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. '512MiB' or '4GiB'")
    number, unit = match.groups()
    return int(float(number) * _MEMORY_FACTORS[(unit or "").lower()])


def parse_duration(text: str) -> int | None:
    """Seconds in ``text`` (``"30m"``, ``"1h"``, ``"2d"``), or None for ``"never"``."""
    if text.strip().lower() == "never":
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write e.g. '30m', '1h', '2d' or 'never'")
    number, unit = match.groups()
    return int(number) * _DURATION_FACTORS[unit]
