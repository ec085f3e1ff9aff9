"""Dependency aliases that keep routes to a few lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Request

from service.console.session import session_secret
from service.core.identity.access import Principal

if TYPE_CHECKING:
    from service.services import Titan


def get_titan(request: Request) -> Titan:
    """The application's core objects."""
    titan: Titan = request.app.state.titan
    return titan


async def current_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a valid one.

    A read (GET, HEAD) without the header may be made with the web console's session
    cookie instead: the console's charts and log views read the API as its pages' user.
    Changes always need the header, so a page elsewhere cannot make one with the cookie.
    The principal is kept on ``request.state`` for the audit log.
    """
    client = request.client.host if request.client else ""
    if authorization is None and request.method in ("GET", "HEAD"):
        secret = session_secret(request)
        authorization = f"Bearer {secret}" if secret else None
    principal = await get_titan(request).authenticate(authorization, client)
    request.state.principal = principal
    return principal


TitanDep = Annotated["Titan", Depends(get_titan)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
