"""User operations behind the API: create, list, disable, enable, delete.

The rules (the README's Security section says the same):

- **Disable**: from the next request on, every token of the user is refused
  — their own tokens and the resource tokens of resources they own — and
  every resource they own is stopped (target ``stopped``, with the reason).
  Resource tokens of a group's resources they applied keep working: such a
  token acts only for that one resource, and the group's work goes on.
  Enabling the user lets their tokens pass again; their resources stay
  stopped until someone starts them.
- **Delete**: refused while they own resources, secrets, images or folders,
  unless ``transfer_to`` names the user or group to hand all of it to
  (``service.core.identity.handover``). Their tokens and memberships go with them.
- Nobody disables or deletes themself, and the last enabled admin is never
  disabled or deleted, so the service is never left without an admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.core.control.state import Target
from service.core.identity.access import Principal, require_admin
from service.core.identity.auth import create_user, issue_token
from service.core.identity.handover import hand_over
from service.database.models import GroupMember, Quota, Resource, Token, User, utcnow
from service.errors import Conflict, NotFound


class UserService:
    """Create users and manage them (admins); ``revoked`` is called whenever tokens die
    (so remembered ones are forgotten) and ``wake`` for each resource stopped."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        revoked: Callable[[], None] = lambda: None,
        wake: Callable[[str], None] = lambda resource_id: None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.revoked = revoked
        self.wake = wake

    def me(self, principal: Principal) -> dict[str, Any]:
        """Who the caller is."""
        return {
            "name": principal.user_name,
            "is_admin": principal.is_admin,
            "resource_id": principal.resource_id,
            "groups": sorted(principal.groups),
            "group_admin_of": sorted(principal.group_admin_of),
        }

    def create(self, principal: Principal, name: str, is_admin: bool) -> dict[str, Any]:
        """A new user and its first token (shown only in this answer)."""
        require_admin(principal)
        with self.sessions.begin() as session:
            user = create_user(session, name, is_admin)
            secret = issue_token(session, user, name="first token")
            return {"name": user.name, "is_admin": user.is_admin, "token": secret}

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        """Every user (admins only)."""
        require_admin(principal)
        with self.sessions() as session:
            return [_view(u) for u in session.scalars(select(User).order_by(User.name))]

    def disable(self, principal: Principal, name: str) -> dict[str, Any]:
        """Refuse every token of ``name`` at once and stop what they own (see the module).
        Disabling a disabled user stops anything of theirs started since."""
        require_admin(principal)
        with self.sessions.begin() as session:
            user = _user(session, name)
            _check_admin_remains(session, principal, user, "disable")
            user.disabled = True
            reason = f"owner {name!r} was disabled by {principal.user_name!r}"
            stopped = _stop_owned(session, name, reason)
            view = {**_view(user), "stopped": [key for _, key in stopped]}
        self.revoked()
        for resource_id, _ in stopped:
            self.wake(resource_id)
        return view

    def enable(self, principal: Principal, name: str) -> dict[str, Any]:
        """Let ``name``'s tokens pass again (their resources stay stopped); no-op if enabled."""
        require_admin(principal)
        with self.sessions.begin() as session:
            user = _user(session, name)
            user.disabled = False
            return _view(user)

    def delete(self, principal: Principal, name: str, transfer_to: str | None) -> dict[str, Any]:
        """Remove ``name`` with their tokens and memberships; what they own goes to
        ``transfer_to`` (Conflict if they own things and it is None). Returns what moved."""
        require_admin(principal)
        with self.sessions.begin() as session:
            user = _user(session, name)
            _check_admin_remains(session, principal, user, "delete")
            moved = hand_over(session, self.settings, user, transfer_to, principal.user_name)
            session.execute(delete(Token).where(Token.user_id == user.id))
            session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
            session.execute(delete(Quota).where(Quota.owner == name))
            session.delete(user)
        self.revoked()
        for resource_id in moved.stopped:
            self.wake(resource_id)
        return {"deleted": name, **moved.view()}


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"user {name!r} not found; `titan user ls` lists them")
    return user


def _check_admin_remains(session: Session, principal: Principal, user: User, verb: str) -> None:
    """Conflict if ``verb`` would lock the caller out or leave no enabled admin."""
    if user.id == principal.user_id:
        raise Conflict(f"you cannot {verb} yourself; another admin can")
    if user.is_admin and not user.disabled:
        others = session.scalar(
            select(func.count()).where(User.is_admin, ~User.disabled, User.id != user.id)
        )
        if not others:
            raise Conflict(
                f"{user.name!r} is the last enabled admin; "
                "create another first (`titan user create NAME --admin`)"
            )


def _stop_owned(session: Session, owner: str, reason: str) -> list[tuple[str, str]]:
    """Set every running resource of ``owner`` to stop; their (id, key)."""
    running = session.scalars(
        select(Resource).where(Resource.owner == owner, Resource.target == Target.RUNNING)
    ).all()
    for resource in running:
        resource.target = Target.STOPPED
        resource.target_reason = reason
        resource.failures = 0
        resource.next_attempt_at = None
        resource.updated_at = utcnow()
    return [(resource.id, resource.key) for resource in running]


def _view(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "is_admin": user.is_admin,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


def check_owner_enabled(session: Session, owner: str) -> None:
    """Conflict if ``owner`` is a disabled user: their resources stay stopped."""
    if session.scalar(select(User.disabled).where(User.name == owner)):
        raise Conflict(
            f"its owner {owner!r} is disabled; an admin enables them first (`titan user enable`)"
        )
