"""Groups: teams whose members share what the group owns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service.core.identity.access import (
    Principal,
    check_change,
    check_see,
    owner_exists,
    require_admin,
    require_user,
)
from service.database.models import Folder, Group, GroupMember, Image, Resource, Secret, User
from service.errors import Conflict, InvalidInput, NotFound
from service.recipes.models import DNS_LABEL

Role = Literal["member", "admin"]


class GroupService:
    """Create groups (admins) and manage their members (group admins and admins).

    ``changed`` is called after every membership change, so remembered
    principals (and the groups they carry) are dropped at once.
    """

    def __init__(self, sessions: sessionmaker[Session], changed: Callable[[], None]) -> None:
        self.sessions = sessions
        self.changed = changed

    def create(self, principal: Principal, name: str, admins: list[str]) -> dict[str, Any]:
        """A new group; ``admins`` (user names) become its first group admins."""
        require_admin(principal)
        if not DNS_LABEL.match(name):
            raise InvalidInput("name: must be a DNS label (a-z, 0-9, '-'; 1-63 characters)")
        with self.sessions.begin() as session:
            if owner_exists(session, name):
                raise InvalidInput(f"name: a user or group named {name!r} already exists")
            group = Group(name=name)
            session.add(group)
            session.flush()
            for user_name in admins:
                user = _user(session, user_name, "admins")
                session.add(GroupMember(group_id=group.id, user_id=user.id, role="admin"))
            session.flush()
            view = _view(_group(session, name))
        self.changed()
        return view

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        """Every group (admins) or the caller's groups."""
        require_user(principal)
        query = select(Group).options(selectinload(Group.members).selectinload(GroupMember.user))
        if not principal.is_admin:
            query = query.where(Group.name.in_(sorted(principal.groups)))
        with self.sessions() as session:
            return [_view(group) for group in session.scalars(query.order_by(Group.name))]

    def get(self, principal: Principal, name: str) -> dict[str, Any]:
        """One group with its members (its members and admins may look)."""
        check_see(principal, name, f"group {name!r}")
        with self.sessions() as session:
            return _view(_group(session, name))

    def set_member(
        self, principal: Principal, name: str, user_name: str, role: Role
    ) -> dict[str, Any]:
        """Add ``user_name`` to the group, or change their role."""
        return self._membership(principal, name, user_name, role)

    def remove_member(self, principal: Principal, name: str, user_name: str) -> dict[str, Any]:
        """Take ``user_name`` out of the group."""
        return self._membership(principal, name, user_name, None)

    def _membership(
        self, principal: Principal, name: str, user_name: str, role: Role | None
    ) -> dict[str, Any]:
        """Give ``user_name`` ``role`` in the group, or (None) take them out."""
        check_change(principal, name, f"group {name!r}")
        with self.sessions.begin() as session:
            group = _group(session, name)
            user = _user(session, user_name, "user")
            member = session.get(GroupMember, (group.id, user.id))
            if role is not None and member is None:
                session.add(GroupMember(group_id=group.id, user_id=user.id, role=role))
            elif role is not None and member is not None:
                member.role = role
            elif member is None:
                raise NotFound(f"user {user_name!r} is not in group {name!r}")
            else:
                session.delete(member)
            session.flush()
            session.expire(group, ["members"])
            view = _view(group)
        self.changed()
        return view

    def delete(self, principal: Principal, name: str) -> None:
        """Remove an empty-handed group (admins): one that owns nothing."""
        require_admin(principal)
        with self.sessions.begin() as session:
            group = _group(session, name)
            owned = (
                (Resource, "resources"),
                (Secret, "secrets"),
                (Image, "images"),
                (Folder, "folders"),
            )
            for table, noun in owned:
                count = session.scalar(select(func.count()).where(table.owner == name))
                if count:
                    raise Conflict(f"group {name!r} still owns {count} {noun}; delete them first")
            session.delete(group)
        self.changed()


def _group(session: Session, name: str) -> Group:
    group = session.scalar(
        select(Group)
        .options(selectinload(Group.members).selectinload(GroupMember.user))
        .where(Group.name == name)
    )
    if group is None:
        raise NotFound(f"group {name!r} not found")
    return group


def _user(session: Session, name: str, field: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise InvalidInput(f"{field}: no user named {name!r}; create it with `titan user create`")
    return user


def _view(group: Group) -> dict[str, Any]:
    members = sorted(group.members, key=lambda m: m.user.name)
    return {
        "name": group.name,
        "created_at": group.created_at.isoformat(),
        "members": [{"user": m.user.name, "role": m.role} for m in members],
    }
