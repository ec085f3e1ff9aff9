"""JSON text a person wrote: where it stops being JSON, and a word when it is YAML.

Used where Titan reads a recipe (``titan apply FILE`` and the recipe routes), so
a syntax error names its line and column, and YAML (which people often write
for recipes) is recognised and met with how to convert it.
"""

from __future__ import annotations

import json
import re

YAML_HINT = (
    "recipes are JSON (this looks like YAML) — convert it, e.g. "
    "`yq -o=json . recipe.yaml > recipe.json` or `python3 -c 'import json, sys, yaml; "
    "json.dump(yaml.safe_load(sys.stdin), sys.stdout, indent=2)' < recipe.yaml > recipe.json`"
)
_YAML_LINE = re.compile(
    r"""(---|%YAML\b|-\s|[A-Za-z_][\w.-]*\s*:(\s|$)|["'][^"']*["']\s*:(\s|$))"""
)


def looks_like_yaml(text: str) -> bool:
    """True if the first line that is not blank or a comment reads as YAML (``key: value``,
    ``- item``, ``---``) rather than the start of a JSON value."""
    for line in text.removeprefix("\ufeff").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return bool(_YAML_LINE.match(stripped))
    return False


def syntax_problem(what: str, text: str, error: json.JSONDecodeError) -> str:
    """The message for ``text`` (named ``what``) failing to parse as JSON: where (line
    and column) and why, and how to convert it if it looks like YAML."""
    where = f"{what} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
    return f"{where}; {YAML_HINT}" if looks_like_yaml(text) else where
