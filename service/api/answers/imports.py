"""Answers about recipes imported from other platforms."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from service.api.answers.base import Answer


class ImportRow(Answer):
    """How one field of the imported document went."""

    field: str = Field(description="the field's path in the imported document")
    outcome: Literal["kept", "translated", "dropped", "refused"]
    titan: str | None = Field(description="the Titan field it became (None: none)")
    why: str


class ImportAnswer(Answer):
    """Titan recipes made from another platform's recipe, and a row for each of its fields."""

    recipes: list[dict[str, Any]] = Field(
        description="Titan recipes, each ready for PUT /api/v1/recipes (nothing is applied)"
    )
    report: list[ImportRow]
