"""Tokens and who may do what.

Tokens are random secrets shown once; only their SHA-256 is stored. A token
belongs to a user; a resource token is also bound to one resource and can
act only for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from collections import deque
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from service.config import Settings
from service.core.access import Principal, owner_exists
from service.errors import InvalidInput, TooManyRequests, Unauthenticated
from service.recipes.models import DNS_LABEL
from service.store.db import in_transaction
from service.store.models import Group, GroupMember, Token, User

log = logging.getLogger(__name__)
TOKEN_PREFIX = "titan_"


def hash_token(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    session: Session, user: User, name: str = "", resource_id: str | None = None
) -> str:
    """Create a token for ``user`` and return its secret (the only time it is seen)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        Token(user_id=user.id, name=name, resource_id=resource_id, token_hash=hash_token(secret))
    )
    return secret


def bearer_hash(authorization: str | None) -> str:
    """The stored form of the token in an ``Authorization: Bearer`` header."""
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated(
            "send 'Authorization: Bearer <token>'; `titan token create` makes one"
        )
    return hash_token(secret.strip())


def principal_of(session: Session, token_hash: str) -> Principal:
    """The principal a stored token stands for, or Unauthenticated."""
    token = session.scalar(
        select(Token).options(joinedload(Token.user)).where(Token.token_hash == token_hash)
    )
    if token is None:
        raise Unauthenticated("the token is not valid; it may have been revoked")
    memberships = session.execute(
        select(Group.name, GroupMember.role)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == token.user_id)
    ).all()
    return Principal(
        token.user.id,
        token.user.name,
        token.user.is_admin,
        token.resource_id,
        groups=frozenset(name for name, _ in memberships),
        group_admin_of=frozenset(name for name, role in memberships if role == "admin"),
    )


class Authenticator:
    """Authenticates requests, remembering valid tokens for ``seconds``.

    The memory saves a database read on every request. It is emptied whenever
    the control plane revokes tokens or changes group memberships
    (``revoked``), so a revoked token is refused at once; a token removed from
    the store by other means stays valid for at most ``seconds``. Unknown
    tokens are never remembered.

    A client (by address) that fails ``failures_allowed`` times within a
    minute gets 429 instead of 401 for every further bad token, each answered
    only after a second, until its oldest failure is a minute old. Valid
    tokens still pass: several clients share one address (everything local
    is 127.0.0.1), and a noisy neighbour must not lock them out. (Tokens
    carry 256 random bits; the limit makes guessing slow and visible.)
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        seconds: float,
        failures_allowed: int = 30,
        size: int = 10_000,
    ) -> None:
        self.sessions = sessions
        self.seconds = seconds
        self.failures_allowed = failures_allowed
        self.size = size
        self._known: dict[str, tuple[Principal, float]] = {}
        self._failures: dict[str, deque[float]] = {}

    async def __call__(self, authorization: str | None, client: str = "") -> Principal:
        """The caller behind the header; Unauthenticated if there is none."""
        now = time.monotonic()
        try:
            token_hash = bearer_hash(authorization)
            known = self._known.get(token_hash)
            if known is not None and known[1] > now:
                return known[0]
            principal = await in_transaction(self.sessions, principal_of, token_hash)
        except Unauthenticated:
            limited = self._limited(client, now)
            self._failed(client, now)
            if limited is not None:
                await asyncio.sleep(1)
                raise limited from None
            raise
        if self.seconds > 0:
            if len(self._known) >= self.size:
                self._known.clear()
            self._known[token_hash] = (principal, now + self.seconds)
        return principal

    def _limited(self, client: str, now: float) -> TooManyRequests | None:
        """The 429 for ``client`` if it failed too often in the last minute."""
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - 60:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        if len(failures) >= self.failures_allowed:
            wait = max(1, math.ceil(failures[0] + 60 - now))
            return TooManyRequests(
                f"too many failed authentications from {client or 'this client'}; "
                f"try again in {wait} s with a valid token",
                retry_after=wait,
            )
        return None

    def _failed(self, client: str, now: float) -> None:
        if len(self._failures) >= self.size and client not in self._failures:
            self._failures.clear()  # bounded memory under a flood of addresses
        self._failures.setdefault(client, deque()).append(now)

    def revoked(self) -> None:
        """Forget every remembered token (some were revoked, or groups changed)."""
        self._known.clear()


def create_user(session: Session, name: str, is_admin: bool = False) -> User:
    """A new user; InvalidInput if the name is not a DNS label or already taken."""
    if not DNS_LABEL.match(name):
        raise InvalidInput("name: must be a DNS label (a-z, 0-9, '-'; 1-63 characters)")
    if owner_exists(session, name):
        raise InvalidInput(f"name: a user or group named {name!r} already exists")
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def bootstrap_admin(sessions: sessionmaker[Session], settings: Settings) -> str | None:
    """On the very first start, create user ``admin`` with a token saved to a 0600 file.

    Returns the token secret when one was created, None when users already exist.
    """
    with sessions.begin() as session:
        if session.scalar(select(User).limit(1)) is not None:
            return None
        admin = create_user(session, "admin", is_admin=True)
        secret = issue_token(session, admin, name="first admin token")
    write_private(settings.admin_token_file, secret + "\n")
    return secret


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(text)
    os.chmod(path, 0o600)


def server_key(settings: Settings) -> bytes:
    """The control plane's own secret (``<data_dir>/server.key``, 0600), made once."""
    path = settings.data_dir / "server.key"
    if not path.exists():
        write_private(path, secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def jupyter_token(key: bytes, resource_id: str) -> str:
    """The JupyterLab token of a workspace: derived, never stored."""
    return _derived(key, "jupyter", resource_id)


def dashboard_ticket(key: bytes, resource_id: str) -> str:
    """What opens one cluster's dashboard through the control plane: derived, never stored."""
    return _derived(key, "dashboard", resource_id)


def _derived(key: bytes, purpose: str, resource_id: str) -> str:
    return hmac.new(key, f"{purpose}:{resource_id}".encode(), hashlib.sha256).hexdigest()[:48]
