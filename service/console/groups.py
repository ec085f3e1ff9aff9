"""The groups page (admins): every group with its members, making a group, and adding or
removing a member."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.session import Changing, SignedIn
from service.core.identity.access import require_admin
from service.core.identity.groups import Role

router = APIRouter(include_in_schema=False)
BACK = "/admin/groups"
Name = Annotated[str, Form(max_length=63)]


@router.get("/admin/groups")
def groups_page(request: Request, titan: TitanDep, principal: SignedIn) -> Response:
    """Every group and its members, with forms to change them."""
    require_admin(principal)
    groups = titan.groups.list(principal)
    return render(request, "groups.html", principal, "Groups", groups=groups)


@router.post("/admin/groups")
def create_group(
    request: Request,
    titan: TitanDep,
    principal: Changing,
    name: Name,
    admins: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A new group; ``admins`` names its first group admins (comma-separated)."""
    named = [admin.strip() for admin in admins.split(",") if admin.strip()]
    titan.groups.create(principal, name.strip(), named)
    return RedirectResponse(BACK, status_code=303)


@router.post("/admin/groups/{name}/members")
def add_member(
    request: Request,
    name: str,
    titan: TitanDep,
    principal: Changing,
    user: Name,
    role: Annotated[Role, Form()] = "member",
) -> Response:
    """Add a member to the group, or change their role."""
    titan.groups.set_member(principal, name, user.strip(), role)
    return RedirectResponse(BACK, status_code=303)


@router.post("/admin/groups/{name}/members/{user}/remove")
def remove_member(
    request: Request, name: str, user: str, titan: TitanDep, principal: Changing
) -> Response:
    """Take a member out of the group."""
    titan.groups.remove_member(principal, name, user)
    return RedirectResponse(BACK, status_code=303)
