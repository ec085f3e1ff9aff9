"""Typed client exceptions, mapped back from HTTP statuses."""

from __future__ import annotations

from typing import Any

import httpx


class TitanClientError(Exception):
    """An error answer from Titan; ``message`` is the server's explanation."""

    def __init__(self, message: str, status: int = 0, code: str = "", details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details


class InvalidError(TitanClientError):
    """400/413/415/422: the request or recipe is wrong; ``details`` lists the problems."""


class UnauthenticatedError(TitanClientError):
    """401: no valid token."""


class ForbiddenError(TitanClientError):
    """403: the token may not do this."""


class NotFoundError(TitanClientError):
    """404: no such resource (or not yours)."""


class ConflictError(TitanClientError):
    """409: the request clashes with the current state."""


class ServerUnavailable(TitanClientError):
    """No Titan server answered at the URL."""


_BY_STATUS: dict[int, type[TitanClientError]] = {
    400: InvalidError,
    401: UnauthenticatedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidError,
    415: InvalidError,
    422: InvalidError,
}


def raise_for_answer(response: httpx.Response) -> None:
    """Raise the typed exception for an error answer; return for a success."""
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        message, code, details = error["message"], error["code"], error.get("details")
    except (ValueError, KeyError, TypeError):
        message, code, details = response.text[:500] or response.reason_phrase, "", None
    kind = _BY_STATUS.get(response.status_code, TitanClientError)
    raise kind(str(message), response.status_code, str(code), details)
