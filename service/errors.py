"""The one public exception family of Titan.

Every error a user can cause is a :class:`TitanError`; its message is safe to
show and says what was wrong and what to do. ``create_app`` maps each subclass
to an HTTP status once; the client maps the statuses back.
"""

from __future__ import annotations

from typing import Any


class TitanError(Exception):
    """An error whose message is safe to show to the user."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}

    def to_body(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(TitanError):
    """The request was understood but its content is wrong (422)."""

    status_code = 422
    code = "invalid"


class MalformedRequest(TitanError):
    """The request body could not be read at all (400)."""

    status_code = 400
    code = "malformed"


class Unauthenticated(TitanError):
    """No valid token was presented (401)."""

    status_code = 401
    code = "unauthenticated"


class Forbidden(TitanError):
    """The caller is known but may not do this (403)."""

    status_code = 403
    code = "forbidden"


class NotFound(TitanError):
    """The named thing does not exist, or the caller may not see it (404)."""

    status_code = 404
    code = "not_found"


class Conflict(TitanError):
    """The request clashes with the current state (409)."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(TitanError):
    """The request body is over the configured limit (413)."""

    status_code = 413
    code = "too_large"


class UnsupportedMediaType(TitanError):
    """The request body is not JSON (415)."""

    status_code = 415
    code = "unsupported_media_type"


class TooManyRequests(TitanError):
    """The client must slow down (429); ``Retry-After`` says for how long."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class BackendError(Exception):
    """A backend could not do what it was asked; the reconciler retries with backoff."""
