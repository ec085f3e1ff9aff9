"""User and token operations behind the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.access import Principal, require_admin, require_user
from service.core.auth import create_user, issue_token
from service.errors import NotFound
from service.store.models import User


class UserService:
    """Create users and tokens; only admins manage other users."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

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
            users = session.scalars(select(User).order_by(User.name))
            return [{"name": u.name, "is_admin": u.is_admin} for u in users]

    def create_token(
        self, principal: Principal, name: str, user_name: str | None
    ) -> dict[str, Any]:
        """A new token for the caller, or (admins) for ``user_name``; shown only here."""
        require_user(principal)
        target = user_name or principal.user_name
        if target != principal.user_name:
            require_admin(principal)
        with self.sessions.begin() as session:
            user = session.scalar(select(User).where(User.name == target))
            if user is None:
                raise NotFound(f"user {target!r} not found")
            return {"user": user.name, "name": name, "token": issue_token(session, user, name)}
