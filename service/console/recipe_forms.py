"""Recipes typed into the console: reading them, their problems by field, the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.errors import TitanError
from service.json_values import decode_json

EXAMPLES = Path(__file__).resolve().parents[2] / "recipes"  # the checkout's recipes/


def read_recipe(text: str) -> Any:
    """The recipe's JSON value; MalformedRequest naming line and column if it is not JSON,
    InvalidInput naming the path of a value Titan would not store."""
    return decode_json(text, "the recipe")


def problems_of(error: TitanError) -> list[dict[str, str]]:
    """Each problem of a refused recipe with the field it is at ("" for the whole)."""
    details = error.details
    if isinstance(details, list) and all(isinstance(d, dict) for d in details):
        return [{"path": str(d.get("path") or ""), "message": str(d["message"])} for d in details]
    return [{"path": "", "message": error.message}]


def examples() -> dict[str, str]:
    """The example recipes shipped in ``recipes/`` (file stem → text), by name; none where
    Titan was installed without its checkout."""
    if not EXAMPLES.is_dir():
        return {}
    found = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        text = path.read_text()
        if path.stem != "schema" and isinstance(json.loads(text), dict):
            found[path.stem] = text
    return found
