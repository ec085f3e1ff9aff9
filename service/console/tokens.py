"""The tokens page: the user's tokens (console sessions among them), revoking one, and
making one whose secret is shown once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.session import SESSION_NAME, Changing, SignedIn, session_secret
from service.core.identity.access import Principal
from service.core.identity.auth import hash_token
from service.services import Titan

router = APIRouter(include_in_schema=False)
DAY = 24 * 3600
MOST_DAYS = 10 * 365  # as the API's ``expires_in`` allows


def _page(request: Request, titan: Titan, principal: Principal, **context: Any) -> Response:
    """The page: every token of the user, this session's own marked."""
    return render(
        request,
        "tokens.html",
        principal,
        "Tokens",
        tokens=titan.tokens.list(principal, None),
        this_session=titan.tokens.id_of(_calling(request)),
        session_name=SESSION_NAME,
        **context,
    )


def _calling(request: Request) -> str:
    """The stored form of this session's token."""
    return hash_token(session_secret(request) or "")


@router.get("/tokens")
def tokens_page(request: Request, titan: TitanDep, principal: SignedIn) -> Response:
    """The user's tokens, newest first, with a form to make one."""
    return _page(request, titan, principal)


@router.post("/tokens")
def create_token(
    request: Request,
    titan: TitanDep,
    principal: Changing,
    name: Annotated[str, Form(max_length=200)] = "",
    expires_days: Annotated[int | None, Form(ge=1, le=MOST_DAYS)] = None,
) -> Response:
    """A new token; the answer is the page showing its secret, this once."""
    seconds = None if expires_days is None else expires_days * DAY
    made = titan.tokens.create(principal, name.strip(), None, seconds)
    return _page(request, titan, principal, new_token=made)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    request: Request,
    token_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
    titan: TitanDep,
    principal: Changing,
) -> Response:
    """Revoke one of the user's tokens (not this session's own: sign out for that)."""
    titan.tokens.revoke(principal, token_id, _calling(request))
    return RedirectResponse("/tokens", status_code=303)
