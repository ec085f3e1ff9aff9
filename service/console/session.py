"""Console sessions: a sign-in with a Titan token becomes an HttpOnly cookie.

Promises:

- The cookie holds a token of its own (named "console session", valid for
  ``console_session_hours``), made at sign-in and revoked at sign-out; the token typed
  in is never stored in the browser. Sessions survive control-plane restarts, show up
  in the user's tokens and die with them (revoked, expired, user disabled).
- The cookie is HttpOnly (page scripts never read it), SameSite=Strict, Secure over
  HTTPS, and scoped to ``/``.
- Every change made from the console needs the page's CSRF token (a form field or the
  ``X-CSRF-Token`` header), derived from the session's secret, and a request from this
  origin (``Origin`` / ``Sec-Fetch-Site``): a page elsewhere — even another port of the
  same host, which SameSite treats as the same site — cannot act for the user.
- Resource tokens (held by processes) cannot sign in.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response

from service.core.identity.access import Principal
from service.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from service.services import Titan

COOKIE = "titan_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_NAME = "console session"


class NotSignedIn(Exception):
    """The request has no valid console session: the answer is the sign-in page."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie holds ``secret``."""
    return hmac.new(secret.encode(), b"titan console csrf", hashlib.sha256).hexdigest()


def session_secret(request: Request) -> str | None:
    """The session cookie's value, if any."""
    return request.cookies.get(COOKIE) or None


def start_session(response: Response, request: Request, secret: str, seconds: int) -> None:
    """Set the session cookie on ``response``."""
    response.set_cookie(
        COOKIE,
        secret,
        max_age=seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def end_session(response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


async def signed_in(request: Request) -> Principal:
    """The user behind the session cookie; NotSignedIn without a valid one."""
    titan: Titan = request.app.state.titan
    secret = session_secret(request)
    if secret is None:
        raise NotSignedIn()
    client = request.client.host if request.client else ""
    try:
        principal = await titan.authenticate(f"Bearer {secret}", client)
    except Unauthenticated as exc:
        raise NotSignedIn("your session ended; sign in again") from exc
    if principal.resource_id is not None:
        raise NotSignedIn()
    request.state.principal = principal  # for the audit log
    request.state.csrf = csrf_token(secret)
    return principal


def check_same_origin(request: Request) -> None:
    """Forbidden for a request a browser says came from another origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"the console takes changes only from its own pages (this came {site})")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("the console takes changes only from its own pages, not from " + origin)


async def may_change(request: Request, principal: SignedIn) -> Principal:
    """The signed-in user, for a request that changes something: it must come from this
    origin and carry the session's CSRF token (Forbidden otherwise)."""
    check_same_origin(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()  # parsed once; routes' Form fields read the same
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not given or not hmac.compare_digest(given, request.state.csrf):
        raise Forbidden(
            "this form is stale or came from elsewhere (CSRF token missing or wrong); "
            "reload the page and try again"
        )
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]
Changing = Annotated[Principal, Depends(may_change)]
