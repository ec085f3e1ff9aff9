"""What an import says about each field it read, and how it refuses.

Every field of the foreign document gets one :class:`Row`: ``kept`` (the same
value, in the Titan field named), ``translated`` (a Titan value made from it),
``dropped`` (not carried over, and why that is harmless or what replaces it) or
``refused`` (Titan cannot honour it). Nothing is left out, so nothing is lost
silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from service.recipes.models import RecipeInvalid

Outcome = Literal["kept", "translated", "dropped", "refused"]
LENIENT_HINT = "--lenient (API: ?lenient=true) drops them, each with its reason in the report"


@dataclass(frozen=True)
class Row:
    """How one field of the foreign document went: ``field`` is its path there,
    ``titan`` the Titan field it became (None where it became none)."""

    field: str
    outcome: Outcome
    titan: str | None
    why: str

    def as_json(self) -> dict[str, Any]:
        """The row as the API answers it."""
        return {"field": self.field, "outcome": self.outcome, "titan": self.titan, "why": self.why}


@dataclass
class Conversion:
    """The Titan recipes made from one foreign document, and the report of every field."""

    recipes: list[dict[str, Any]] = field(default_factory=list)
    report: list[Row] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """``{"recipes": [...], "report": [...]}``."""
        return {"recipes": self.recipes, "report": [row.as_json() for row in self.report]}


class ImportRefused(RecipeInvalid):
    """The document cannot be converted: ``problems`` names each field (its path in
    the foreign document) with why; ``report`` is every row made before refusing."""

    def __init__(
        self, problems: list[dict[str, Any]], report: list[Row], lenient_helps: bool
    ) -> None:
        super().__init__(problems)
        self.report = report
        self.lenient_helps = lenient_helps  # some problems are fields lenient would drop
