"""Recipes of other platforms converted into Titan recipes for a user; nothing is applied."""

from __future__ import annotations

from typing import Any

from service.config import Settings
from service.core.identity.access import Principal, require_user
from service.errors import InvalidInput
from service.recipes.importers import ImportRefused, convert
from service.recipes.importers.report import LENIENT_HINT
from service.recipes.models import RecipeInvalid


def import_saturn(
    settings: Settings, principal: Principal, document: Any, lenient: bool
) -> dict[str, Any]:
    """``{"recipes", "report"}`` for a Saturn Cloud recipe (either schema), sizes through
    the operator's TITAN_SATURN_INSTANCE_TYPES; InvalidInput listing each field (its path
    in the Saturn document) that Titan cannot take, saying when --lenient would help."""
    require_user(principal)
    try:
        conversion = convert(
            document, settings.saturn_instance_types, settings.instance_types, lenient
        )
    except ImportRefused as exc:
        count = len(exc.problems)
        paths = ", ".join(p["path"] for p in exc.problems[:20])
        hint = f"; {LENIENT_HINT}" if exc.lenient_helps else ""
        raise InvalidInput(
            f"{count} Saturn field{'s' * (count != 1)} cannot be converted: {paths}{hint}",
            exc.problems,
        ) from None
    except RecipeInvalid as exc:
        raise InvalidInput(f"not a Saturn resource recipe: {exc}", exc.problems) from None
    return conversion.as_json()
