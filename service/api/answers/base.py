"""The base of every answer model and the error body every failing route answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

Timestamp = str  # ISO 8601 with its UTC offset, e.g. 2026-12-07T03:35:16.405527+00:00


class Answer(BaseModel):
    """An answer: exactly these fields (an undeclared one is an error, not dropped)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorDetail(Answer):
    code: str
    message: str
    details: Any = None


class ErrorAnswer(Answer):
    """Every refusal: ``{"error": {"code", "message", "details"}}`` (see service/errors.py)."""

    error: ErrorDetail


# Documented for every route: the statuses Titan answers with an ErrorAnswer.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorAnswer, "description": description}
    for status, description in {
        400: "malformed request",
        401: "no valid token",
        403: "not allowed",
        404: "not found",
        409: "conflict (e.g. If-Match names an older generation)",
        413: "body too large",
        415: "not JSON",
        422: "invalid input: the message names the field and the fix",
        429: "too many failed sign-ins",
    }.items()
}
