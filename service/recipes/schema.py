"""The published JSON Schema of recipes (``recipes/schema.json``).

Run ``python -m service.recipes.schema > recipes/schema.json`` after changing
the models; a test fails while the file is stale.
"""

from __future__ import annotations

import json
from typing import Any

from service.recipes.models import RECIPE_ADAPTER


def recipe_json_schema() -> dict[str, Any]:
    """The JSON Schema every recipe validates against."""
    schema = RECIPE_ADAPTER.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Titan recipe",
        **schema,
    }


def render() -> str:
    """The schema as the text stored in ``recipes/schema.json``."""
    return json.dumps(recipe_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
