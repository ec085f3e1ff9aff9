"""Who may do what: every authorization rule of Titan, in one place.

Everything a user makes (resources, images, secrets) has an owner: a user or
a group. The rules:

- **see / use** (read it, its logs and telemetry; attach a secret or image
  to a recipe): admins, the owning user, and members of the owning group.
- **change** (create in the owner's name, update, start, stop, delete,
  rotate): admins, the owning user, and admins of the owning group.
- **admin** (users, groups, quotas, alert rules, audit, re-encryption):
  admins only.
- A resource token (held by a process Titan started) acts only for its own
  resource: it may read that resource and send its telemetry, nothing else.

What a caller may not see is answered as *not found*, so names never leak;
what they may see but not change is answered *forbidden*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from service.database.models import Group, Resource, User
from service.errors import Forbidden, InvalidInput, NotFound, Unauthenticated


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user with their groups, optionally narrowed to one resource."""

    user_id: int
    user_name: str
    is_admin: bool
    resource_id: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)  # every group they are in
    group_admin_of: frozenset[str] = field(default_factory=frozenset)

    @property
    def owners(self) -> frozenset[str]:
        """The owners whose things this user sees: themself and their groups."""
        return self.groups | {self.user_name}


def require_user(principal: Principal) -> None:
    """Refuse resource tokens: the action is for users only."""
    if principal.resource_id is not None:
        raise Forbidden("a resource token can only act for its own resource")


def require_admin(principal: Principal) -> None:
    """Refuse everyone but admins."""
    require_user(principal)
    if not principal.is_admin:
        raise Forbidden("only an admin may do this")


def may_see(principal: Principal, owner: str) -> bool:
    """Whether a user may see and use what ``owner`` owns."""
    return principal.is_admin or owner in principal.owners


def may_change(principal: Principal, owner: str) -> bool:
    """Whether a user may create, change or delete what ``owner`` owns."""
    return principal.is_admin or owner == principal.user_name or owner in principal.group_admin_of


def check_see(principal: Principal, owner: str, what: str) -> None:
    """NotFound unless the caller (a user) may see ``what`` (e.g. "secret 'db' of owner 'ml'")."""
    require_user(principal)
    if not may_see(principal, owner):
        raise NotFound(f"{what} not found")


def check_change(principal: Principal, owner: str, what: str) -> None:
    """NotFound if the caller may not see ``what``; Forbidden if they may not change it."""
    check_see(principal, owner, what)
    if not may_change(principal, owner):
        raise Forbidden(
            f"{what} belongs to group {owner!r}: only its group admins or an admin may change it"
        )


def check_resource(principal: Principal, resource: Resource, change: bool = False) -> None:
    """Allow what the rules allow on ``resource``; its own token may only read it."""
    what = f"{resource.type} {resource.name!r} of owner {resource.owner!r}"
    if principal.resource_id is not None:
        if principal.resource_id != resource.id or change:
            raise Forbidden("a resource token can only read its own resource")
        return
    (check_change if change else check_see)(principal, resource.owner, what)


def visible(principal: Principal, owner_column: Any) -> list[ColumnElement[bool]]:
    """WHERE clauses keeping the rows the caller may see (``owner_column`` names the owner)."""
    if principal.resource_id is not None:
        return [Resource.id == principal.resource_id]
    if principal.is_admin:
        return []
    return [owner_column.in_(sorted(principal.owners))]


def resolve_owner(session: Session, principal: Principal, owner: str | None) -> str:
    """The owner a new thing gets: the caller, or a user or group the caller may act for."""
    require_user(principal)
    name = owner or principal.user_name
    if not owner_exists(session, name):
        raise InvalidInput(
            f"owner: no user or group named {name!r}; "
            "create it with `titan user create` or `titan group create`"
        )
    if not may_change(principal, name):
        if name in principal.groups:
            raise Forbidden(f"owner {name!r}: only the group's admins may create things it owns")
        raise Forbidden(f"owner {name!r}: you may only create things you or your groups own")
    return name


def owner_exists(session: Session, name: str) -> bool:
    """Whether a user or a group is called ``name`` (they share one namespace)."""
    return (
        session.scalar(select(User.id).where(User.name == name)) is not None
        or session.scalar(select(Group.id).where(Group.name == name)) is not None
    )


def check_attachable(
    principal: Principal, resource_owner: str, owner: str, found: bool, field: str, what: str
) -> None:
    """InvalidInput unless a resource of ``resource_owner`` applied by the caller may use
    ``what`` (e.g. "secret 'db'") of ``owner``: it exists and the caller may see it; and a
    group's resource uses only the group's own, since every member reaches what the
    group's resources hold."""
    if not found or not may_see(principal, owner):
        raise InvalidInput(f"{field}: no {what} of owner {owner!r}; create it first")
    if owner != resource_owner and resource_owner != principal.user_name:
        raise InvalidInput(
            f"{field}: a resource of group {resource_owner!r} may only use the group's own "
            f"{what.split()[0]}s, not those of {owner!r}"
        )


def check_route(
    principal: Principal | None,
    visibility: str,
    owner: str,
    owner_groups: frozenset[str],
    what: str,
) -> None:
    """Let a caller through a deployment's route of ``visibility`` (see the recipe's
    ``routes``), or raise: Unauthenticated without a token where one is needed,
    Forbidden for a resource token, NotFound for a user the route does not let in
    (``what`` names the deployment, never confirming it to them)."""
    if visibility == "public":
        return
    if principal is None:
        raise Unauthenticated(
            f"{what} needs a Titan token: send 'Authorization: Bearer <token>' "
            "(make one with `titan token create`)"
        )
    if principal.resource_id is not None:
        raise Forbidden("a resource token can only act for its own resource; use a user's token")
    if visibility == "account" or may_see(principal, owner):
        return
    if visibility == "group" and principal.groups & owner_groups:
        return
    raise NotFound(f"{what} not found")
