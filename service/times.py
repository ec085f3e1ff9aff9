"""Times as people write them on a command line or in a query string.

:func:`parse_time` reads epoch seconds (``1765076400``), ISO 8601
(``2026-12-07T03:00:00Z``, ``2026-12-07``; a time without a zone is UTC) and
times back from now (``now``, ``-90s``, ``-30m``, ``-1h``, ``-2d``, ``-1w``; the minus may
be left out: ``titan logs --since 10m``).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from service.errors import InvalidInput

FORMS = (
    "epoch seconds (1765076400), ISO 8601 (2026-12-07T03:00:00Z) "
    "or a time relative to now (-30m, -1h, -2d, now)"
)
LATEST = 1e11  # epoch seconds in the year 5138: anything later is a typo
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"-?\s*(\d{1,9}(?:\.\d{1,6})?)\s*([smhdw])")
_EPOCH = re.compile(r"\d{1,12}(?:\.\d{1,9})?")
# What an ISO 8601 time may hold (fromisoformat passes some odd text, a trailing NUL too).
_ISO = re.compile(r"\d{4}-[0-9Tt:.,+ Zz-]{2,40}")


def parse_time(text: str, now: float) -> float:
    """``text`` as epoch seconds, relative forms counted back from ``now``; ValueError
    saying which forms are accepted if it is none of them (or before 1970, or after
    the year 5138)."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered == "now":
        return now
    relative = _RELATIVE.fullmatch(lowered)
    if relative is not None:
        value = now - float(relative.group(1)) * _UNITS[relative.group(2)]
    elif _EPOCH.fullmatch(stripped):
        value = float(stripped)
    else:
        value = _iso(stripped)
    if not (math.isfinite(value) and 0 <= value <= LATEST):
        raise ValueError(f"{_brief(text)} is outside 1970 to the year 5138; give {FORMS}")
    return value


def _iso(text: str) -> float:
    """An ISO 8601 time (UTC when it names no zone) as epoch seconds."""
    if not _ISO.fullmatch(text):
        raise ValueError(f"{_brief(text)} is not a time; give {FORMS}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{_brief(text)} is not a time; give {FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _brief(text: str) -> str:
    return repr(text[:40] + "…" if len(text) > 40 else text)


def time_param(field: str, text: str | None, now: float) -> float | None:
    """The request parameter ``field`` as epoch seconds (None if not given); InvalidInput
    (422) naming the field and the accepted forms if it is not a time."""
    if text is None:
        return None
    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}") from None
