"""JSON as Titan accepts it from a client: what may be stored, and what an error may echo.

Everything a client sends is decoded by :func:`decode_json`, which never fails
with anything but a :class:`~service.errors.TitanError`: text that is not JSON
is :class:`MalformedRequest` (400); a value Titan would not store is
:class:`InvalidInput` (422) naming the JSON path of the first such value:

- text holding a NUL character (no process argument, environment variable,
  file name or PostgreSQL text can hold one);
- text holding a lone UTF-16 surrogate (``"\\ud800"`` without its pair): it is
  not Unicode, so it cannot be stored, encrypted or sent back as UTF-8;
- an integer outside the signed 64-bit range, or a number too large for a
  double (``1e400``), or ``NaN``/``Infinity`` (which are not JSON).

Stricter rules of particular fields (control characters in commands, names)
are the models' job; this is the floor under every route.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from service.errors import InvalidInput, MalformedRequest
from service.json_text import syntax_problem

MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_SHOWN_CHARS = 200


class _Refused:
    """Stands in for a number the decoder would not keep, until the walk names its path."""

    def __init__(self, why: str) -> None:
        self.why = why


def _integer(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    # Checked on the digits before converting: int() of 4,301+ digits raises, and is slow.
    if digits > 19 or not MIN_INT <= (value := int(text)) <= MAX_INT:
        return _Refused(
            f"an integer of {digits} digits is out of range; numbers must lie between "
            f"{MIN_INT} and {MAX_INT}"
        )
    return value


def _float(text: str) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        return _Refused("the number is too large (over 1.8e308)")
    return value


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number; send a finite number")


def decode_json(body: bytes | str, what: str = "the body") -> Any:
    """The JSON value of ``body`` (named ``what`` in messages); MalformedRequest if it is
    not JSON text, InvalidInput (naming the path) if it holds a value Titan would not
    store. Never raises anything else.
    """
    try:
        value = json.loads(body, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except UnicodeDecodeError:
        raise MalformedRequest(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise MalformedRequest(f"{what} nests JSON too deeply") from None
    except json.JSONDecodeError as exc:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise MalformedRequest(syntax_problem(what, text, exc)) from None
    found = first_unstorable(value)
    if found is not None:
        path, message = found
        raise InvalidInput(
            f"{path or what}: {message}",
            [{"path": path, "message": message, "value": None}],
        )
    return value


def first_unstorable(value: Any) -> tuple[str, str] | None:
    """The path and a message for the first value (in document order) Titan would not
    store, or None if there is none. Keys are checked as well as values."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return path, problem
        elif isinstance(item, _Refused):
            return path, item.why
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                problem = text_problem(key)
                if problem is not None:
                    return join_path(path, key), f"this key {problem}"
                children.append((join_path(path, key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            indexed = [(f"{path}[{index}]", child) for index, child in enumerate(item)]
            stack.extend(reversed(indexed))
    return None


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL or a lone surrogate, where), or None."""
    bad = _UNSTORABLE.search(text)
    if bad is None:
        return None
    where = f"at position {bad.start()}"
    if bad.group() == "\x00":
        return f"holds a NUL character (\\u0000) {where}; remove it"
    return (
        f"holds a lone UTF-16 surrogate (\\u{ord(bad.group()):04x}) {where}, which is not "
        "text; send valid Unicode (a character beyond U+FFFF is a pair such as \\ud83d\\ude00)"
    )


def join_path(path: str, key: str) -> str:
    """``path`` extended by the object key ``key``: ``spec.environment_variables.FOO``,
    or ``spec.environment_variables["A B"]`` for a key that is not a plain name."""
    if not _PLAIN_KEY.match(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def shown(value: Any, limit: int = _SHOWN_CHARS) -> str | int | float | bool | None:
    """``value`` as an error body may echo it: JSON-encodable as UTF-8 whatever it is
    (huge integers and non-finite numbers described, text cut to ``limit`` characters
    (200 by default) with "…" and surrogates escaped, containers as a short repr).
    Never raises.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if MIN_INT <= value <= MAX_INT:
            return value
        return f"an integer of about {int((value.bit_length() - 1) * math.log10(2)) + 1} digits"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if not isinstance(value, str):
        try:
            value = repr(value)
        except ValueError:  # a huge integer inside: its repr is refused
            return None
    if len(value) > limit:
        value = value[:limit] + "…"
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def quoted(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message (its repr), cut to ``limit`` characters with "…"."""
    return repr(text[:limit] + "…" if len(text) > limit else text)
