"""The users page (admins): every user, making one (its first token shown once), and
disabling or enabling one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.session import Changing, SignedIn
from service.core.identity.access import Principal, require_admin
from service.services import Titan

router = APIRouter(include_in_schema=False)
SWITCHES = ("disable", "enable")


def _page(request: Request, titan: Titan, principal: Principal, **context: Any) -> Response:
    require_admin(principal)
    users = titan.users.list(principal)
    return render(request, "users.html", principal, "Users", users=users, **context)


@router.get("/admin/users")
def users_page(request: Request, titan: TitanDep, principal: SignedIn) -> Response:
    """Every user, with a form to make one."""
    return _page(request, titan, principal)


@router.post("/admin/users")
def create_user(
    request: Request,
    titan: TitanDep,
    principal: Changing,
    name: Annotated[str, Form(max_length=63)],
    is_admin: Annotated[bool, Form()] = False,
) -> Response:
    """A new user; the answer is the page showing its first token, this once."""
    made = titan.users.create(principal, name.strip(), is_admin)
    return _page(request, titan, principal, new_user=made)


@router.post("/admin/users/{name}/{switch}")
def switch_user(
    request: Request, name: str, switch: str, titan: TitanDep, principal: Changing
) -> Response:
    """Disable a user (their tokens refused, their resources stopped) or enable them."""
    if switch not in SWITCHES:
        return Response(status_code=404)
    if switch == "disable":
        titan.users.disable(principal, name)
    else:
        titan.users.enable(principal, name)
    return RedirectResponse("/admin/users", status_code=303)
