"""API tokens: make them (optionally expiring), list them, revoke them.

A user manages their own tokens; admins manage anyone's. A revoked token's
row is deleted and every remembered token forgotten (``revoked``), so it is
refused on its very next use. Listings never show a secret or its hash.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.identity.access import Principal, require_admin, require_user
from service.core.identity.auth import new_token
from service.database.models import Token, User, utcnow
from service.errors import Conflict, NotFound


class TokenService:
    """Create, list and revoke tokens; ``revoked`` is called after each revocation."""

    def __init__(self, sessions: sessionmaker[Session], revoked: Callable[[], None]) -> None:
        self.sessions = sessions
        self.revoked = revoked

    def create(
        self, principal: Principal, name: str, user_name: str | None, expires_in: int | None
    ) -> dict[str, Any]:
        """A new token for the caller, or (admins) for ``user_name``, valid for
        ``expires_in`` seconds (None: until revoked); its secret is shown only here."""
        with self.sessions.begin() as session:
            user = _target(session, principal, user_name)
            if user.disabled:
                raise Conflict(
                    f"user {user.name!r} is disabled; enable them first (`titan user enable`)"
                )
            expires_at = None if expires_in is None else utcnow() + timedelta(seconds=expires_in)
            token, secret = new_token(session, user, name, expires_at=expires_at)
            return {**_view(token, user.name), "token": secret}

    def list(self, principal: Principal, user_name: str | None) -> list[dict[str, Any]]:
        """The caller's tokens, or (admins) ``user_name``'s: their own and those of the
        processes of their resources (``resource_id`` set), newest first."""
        with self.sessions() as session:
            user = _target(session, principal, user_name)
            tokens = session.scalars(
                select(Token).where(Token.user_id == user.id).order_by(Token.id.desc())
            )
            return [_view(token, user.name) for token in tokens]

    def revoke(self, principal: Principal, token_id: int, calling: str) -> None:
        """Delete token ``token_id`` (the caller's own, or any for admins): refused from
        its next use on. NotFound for a token the caller may not see; Conflict for the
        token the call is made with (``calling``, its hash), so nobody revokes their way
        out of their own account: revoke it with another token."""
        require_user(principal)
        with self.sessions.begin() as session:
            token = session.get(Token, token_id)
            if token is None or not (principal.is_admin or token.user_id == principal.user_id):
                raise NotFound(f"token {token_id} not found; `titan token ls` lists yours")
            if token.token_hash == calling:
                raise Conflict(
                    f"token {token_id} is the one this call is made with; revoke it with "
                    "another token (`titan token create` makes one)"
                )
            session.delete(token)
        self.revoked()

    def id_of(self, token_hash: str) -> int | None:
        """The id of the token whose stored form is ``token_hash``; None if there is none."""
        with self.sessions() as session:
            return session.scalar(select(Token.id).where(Token.token_hash == token_hash))

    def end(self, token_hash: str) -> None:
        """Revoke the token whose stored form is ``token_hash`` (a console session signing
        out with it); nothing if it is already gone."""
        with self.sessions.begin() as session:
            token = session.scalar(select(Token).where(Token.token_hash == token_hash))
            if token is not None:
                session.delete(token)
        self.revoked()


def _target(session: Session, principal: Principal, user_name: str | None) -> User:
    """The user a token call is about: the caller, or (admins only) ``user_name``."""
    require_user(principal)
    name = user_name or principal.user_name
    if name != principal.user_name:
        require_admin(principal)
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"user {name!r} not found")
    return user


def _view(token: Token, user_name: str) -> dict[str, Any]:
    expires = token.expires_at
    return {
        "id": token.id,
        "user": user_name,
        "name": token.name,
        "resource_id": token.resource_id,
        "created_at": token.created_at.isoformat(),
        "expires_at": expires.isoformat() if expires else None,
        "expired": expires is not None and expires <= utcnow(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }
