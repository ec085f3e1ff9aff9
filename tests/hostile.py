"""Hostile JSON values for fuzzing, and the encoder that can send them.

What an attacker puts anywhere in a body: integers of thousands of digits,
numbers beyond a double (``1e400``), ``NaN``, lone UTF-16 surrogates, NUL and
other control characters. ``json.dumps`` can write none of the numbers (Python
refuses to turn 4,301+ digits into text, and writes ``inf`` as ``Infinity``),
and httpx cannot encode a lone surrogate as UTF-8, so :func:`to_json` writes
the text itself: ASCII only, surrogates escaped, :class:`Raw` numbers inlined.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any

from hypothesis import strategies as st


class Raw:
    """A JSON number written as given, e.g. 5,000 nines."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:20]!r}{'…' if len(self.text) > 20 else ''})"


_MARK = f"raw-{uuid.uuid4().hex}-"
_MARKED = re.compile(f'"{_MARK}(\\d+)"')


def to_json(value: Any) -> str:
    """``value`` as JSON text in ASCII, with each :class:`Raw` written as its text."""
    raws: list[str] = []

    def mark(item: Any) -> str:
        if not isinstance(item, Raw):
            raise TypeError(f"cannot write {type(item).__name__} as JSON")
        raws.append(item.text)
        return f"{_MARK}{len(raws) - 1}"

    text = json.dumps(value, ensure_ascii=True, default=mark)
    return _MARKED.sub(lambda match: raws[int(match.group(1))], text)


# Characters no stored text may hold (NUL, lone surrogates) and ones no command,
# variable or name may (other controls), mixed with ordinary ones.
BAD_CHARS = ["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\x1b", "\r", "\x07", "\x7f", "\x9b"]
HOSTILE_TEXT = st.lists(
    st.sampled_from(BAD_CHARS) | st.characters(codec="utf-8"), min_size=1, max_size=6
).map("".join)
HUGE = st.integers(20, 6000).map(lambda digits: Raw("9" * digits)) | st.sampled_from(
    [
        Raw("-" + "1" * 5000),
        Raw("18446744073709551616"),
        Raw("-9223372036854775809"),
        Raw("1e400"),
        Raw("-1e400"),
        Raw("NaN"),
        Raw("Infinity"),
    ]
)
HOSTILE = HOSTILE_TEXT | HUGE


def is_hostile(value: Any) -> bool:
    """True if ``value`` holds, anywhere (keys too), a number out of range or text with a
    control character other than tab and newline, or a lone surrogate."""
    if isinstance(value, Raw):
        return True
    if isinstance(value, str):
        return any(char in BAD_CHARS or _control(char) for char in value)
    if isinstance(value, dict):
        return any(is_hostile(key) or is_hostile(item) for key, item in value.items())
    if isinstance(value, list):
        return any(is_hostile(item) for item in value)
    return False


def _control(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 and char not in "\t\n") or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def poisoned(body: Any, poison: Any, spot: int) -> Any:
    """A copy of ``body`` with ``poison`` put at one place chosen by ``spot``: as the value
    of an existing or new key of one of its objects, an item of one of its lists, or
    instead of the whole body if it has neither."""
    body = copy.deepcopy(body)
    containers: list[Any] = []
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict | list):
            containers.append(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    if not containers:
        return poison
    target = containers[spot % len(containers)]
    turn = spot // len(containers)
    if isinstance(target, dict):
        keys = [*target, "injected"]
        target[keys[turn % len(keys)]] = poison
    else:
        target.insert(turn % (len(target) + 1), poison)
    return body
