"""Signing in and out of the console."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import local_path, render
from service.console.session import (
    SESSION_NAME,
    Changing,
    check_same_origin,
    end_session,
    session_secret,
    start_session,
)
from service.core.identity.auth import hash_token
from service.errors import TitanError

router = APIRouter(include_in_schema=False)


@router.get("/sign-in")
def sign_in_page(request: Request, titan: TitanDep, next: str | None = None) -> Response:
    """The sign-in form."""
    return _form(request, titan, local_path(next))


@router.post("/sign-in")
async def sign_in(
    request: Request,
    titan: TitanDep,
    token: Annotated[str, Form(max_length=512)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """A session from a valid user token: the cookie, and on to ``next``."""
    try:
        check_same_origin(request)  # no signing a victim into the attacker's account
        client = request.client.host if request.client else ""
        principal = await titan.authenticate(f"Bearer {token.strip()}", client)
        if principal.resource_id is not None:
            raise TitanError("a resource token cannot sign in; use your own token")
        hours = titan.settings.console_session_hours
        made = await asyncio.to_thread(  # a store write: off the event loop
            titan.tokens.create, principal, SESSION_NAME, None, int(hours * 3600)
        )
    except TitanError as exc:
        return _form(request, titan, local_path(next), exc.message, exc.status_code)
    request.state.principal = principal
    answer = RedirectResponse(local_path(next), status_code=303)
    start_session(answer, request, made["token"], int(hours * 3600))
    return answer


@router.post("/sign-out")
def sign_out(request: Request, titan: TitanDep, principal: Changing) -> Response:
    """End the session: its token is revoked, the cookie removed."""
    secret = session_secret(request)
    if secret is not None:
        titan.tokens.end(hash_token(secret))
    answer = RedirectResponse("/sign-in", status_code=303)
    end_session(answer)
    return answer


def _form(
    request: Request, titan: TitanDep, next: str, error: str = "", status_code: int = 200
) -> Response:
    return render(
        request,
        "sign_in.html",
        None,
        "Sign in",
        status_code,
        next=next,
        error=error,
        admin_token_file=titan.settings.admin_token_file,
    )
