"""Tokens and who may do what.

Tokens are random secrets shown once; only their SHA-256 is stored. A token
belongs to a user; a resource token is also bound to one resource and can
act only for it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from service.config import Settings
from service.core.identity.access import Principal, owner_exists
from service.database.db import in_transaction
from service.database.models import Group, GroupMember, Resource, Token, User, utcnow
from service.errors import InvalidInput, TitanError, TooManyRequests, Unauthenticated
from service.recipes.models import DNS_LABEL

log = logging.getLogger(__name__)
TOKEN_PREFIX = "titan_"
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_token(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(
    session: Session,
    user: User,
    name: str = "",
    resource_id: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[Token, str]:
    """A new token row for ``user`` (flushed: it has its id) and its secret, the only
    time the secret is seen. ``expires_at`` None: it never expires."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        user_id=user.id,
        name=name,
        resource_id=resource_id,
        token_hash=hash_token(secret),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, secret


def issue_token(
    session: Session, user: User, name: str = "", resource_id: str | None = None
) -> str:
    """Create a token for ``user`` that never expires and return its secret."""
    return new_token(session, user, name, resource_id)[1]


def bearer_hash(authorization: str | None) -> str:
    """The stored form of the token in an ``Authorization: Bearer`` header."""
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated(
            "send 'Authorization: Bearer <token>'; `titan token create` makes one"
        )
    return hash_token(secret.strip())


class Checked(NamedTuple):
    """A valid token: who it stands for and when it expires (None: never)."""

    principal: Principal
    expires_at: datetime | None


def check_token(session: Session, token_hash: str) -> Checked:
    """The principal a stored token stands for; Unauthenticated if the token is unknown
    (never made, or revoked), expired, or its user disabled (see ``_dies_with_user``).

    Records when the token was last used, to the minute (at most one write a minute).
    """
    token = session.scalar(
        select(Token).options(joinedload(Token.user)).where(Token.token_hash == token_hash)
    )
    if token is None:
        raise Unauthenticated("the token is not valid; it may have been revoked")
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated(
            f"the token expired at {token.expires_at:%Y-%m-%d %H:%M:%S} UTC; "
            "make a new one with `titan token create`"
        )
    user = token.user
    if user.disabled and _dies_with_user(session, token):
        raise Unauthenticated(
            f"user {user.name!r} is disabled; an admin can enable them (`titan user enable`)"
        )
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        token.last_used_at = now
    memberships = session.execute(
        select(Group.name, GroupMember.role)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == token.user_id)
    ).all()
    principal = Principal(
        user.id,
        user.name,
        user.is_admin,
        token.resource_id,
        groups=frozenset(name for name, _ in memberships),
        group_admin_of=frozenset(name for name, role in memberships if role == "admin"),
    )
    return Checked(principal, token.expires_at)


def _dies_with_user(session: Session, token: Token) -> bool:
    """Whether a disabled user's token is refused: every one but the resource tokens of
    a group's resources, which act for the group's resource only (not for the user) and
    die when that resource stops."""
    if token.resource_id is None:
        return True
    owner = session.scalar(select(Resource.owner).where(Resource.id == token.resource_id))
    return owner is None or owner == token.user.name


class Authenticator:
    """Authenticates requests, remembering valid tokens for ``seconds``.

    The memory saves a database read on every request. It is emptied whenever
    the control plane revokes tokens, disables or deletes users, or changes
    group memberships (``revoked``), so a revoked token is refused at once; a
    token removed from the store by other means stays valid for at most
    ``seconds``. A token is never remembered past its expiry. Unknown tokens
    are never remembered.

    ``client`` is the connection's peer address; a forwarded address only
    when the peer is a proxy the operator trusts (``TITAN_TRUSTED_PROXIES``,
    see ``service.server.uvicorn_config``), so headers cannot pick the client.

    A client that fails ``failures_allowed`` times within a minute is limited
    until its ``failures_allowed``-th latest failure is a minute old. While it
    is limited, its guesses are not checked at all: a token it sends gets 429
    at once, without a database lookup, and counts as another failure —
    unless the control plane knows the token to be good: a remembered token
    passes as always (no lookup), and a token once found valid here (the
    last ``size`` such tokens are kept as hashes) is looked up as usual. A
    guess can never be among those, so a limited client learns nothing about
    its guesses, while clients sharing its address (everything local is
    127.0.0.1) are not locked out by a noisy neighbour. The price: a valid
    token never used before, sent from a limited address, gets 429 until the
    limit lifts. (Tokens carry 256 random bits; the limit makes guessing
    slow and visible.)
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
        self.lookups = 0  # tokens looked up in the store, for tests and curious operators
        self._known: dict[str, tuple[Principal, float]] = {}
        self._vouched: dict[str, None] = {}  # hashes of tokens once found valid, oldest first
        self._failures: dict[str, deque[float]] = {}

    async def __call__(self, authorization: str | None, client: str = "") -> Principal:
        """The caller behind the header; Unauthenticated if there is none, TooManyRequests
        while ``client`` is limited (see the class)."""
        now = time.monotonic()
        limited = self._limited(client, now)
        try:
            token_hash = bearer_hash(authorization)
        except Unauthenticated as exc:
            raise self._refusal(exc, client, now, limited) from None
        known = self._known.get(token_hash)
        if known is not None and known[1] > now:
            return known[0]
        if limited and token_hash not in self._vouched:
            raise self._refusal(None, client, now, limited)  # a guess: never checked
        self.lookups += 1
        try:
            checked = await in_transaction(self.sessions, check_token, token_hash)
        except Unauthenticated as exc:
            raise self._refusal(exc, client, now, limited) from None
        self._remember(token_hash, checked, now)
        return checked.principal

    def _refusal(
        self, error: Unauthenticated | None, client: str, now: float, limited: bool
    ) -> TitanError:
        """Count a failure of ``client``; the 429 while it is limited, else ``error``."""
        self._failed(client, now)
        if limited or error is None:
            return self._too_many(client, now)
        return error

    def _remember(self, token_hash: str, checked: Checked, now: float) -> None:
        self._vouched.pop(token_hash, None)
        if len(self._vouched) >= self.size:
            del self._vouched[next(iter(self._vouched))]
        self._vouched[token_hash] = None
        lifetime = self.seconds
        if checked.expires_at is not None:
            lifetime = min(lifetime, (checked.expires_at - utcnow()).total_seconds())
        if lifetime <= 0:
            return
        if len(self._known) >= self.size:
            self._known.clear()
        self._known[token_hash] = (checked.principal, now + lifetime)

    def _limited(self, client: str, now: float) -> bool:
        """Whether ``client`` failed ``failures_allowed`` times within the last minute."""
        failures = self._failures.get(client)
        if failures is None:
            return False
        if failures[-1] <= now - 60:
            del self._failures[client]  # quiet for a minute: forget it
            return False
        return len(failures) >= self.failures_allowed and failures[0] > now - 60

    def _too_many(self, client: str, now: float) -> TooManyRequests:
        failures = self._failures.get(client)
        wait = max(1, math.ceil(failures[0] + 60 - now)) if failures else 60
        return TooManyRequests(
            f"too many failed authentications from {client or 'this client'}; "
            f"try again in {wait} s with a valid token",
            retry_after=wait,
        )

    def _failed(self, client: str, now: float) -> None:
        if len(self._failures) >= self.size and client not in self._failures:
            self._failures.clear()  # bounded memory under a flood of addresses
        failures = self._failures.setdefault(client, deque(maxlen=self.failures_allowed))
        failures.append(now)

    def revoked(self) -> None:
        """Forget every remembered token (some were revoked, users disabled, or groups
        changed): each is checked against the store on its next use."""
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


def workspace_ticket(key: bytes, resource_id: str) -> str:
    """What opens a workspace's JupyterLab through the control plane (all of it, as its
    owner): derived, never stored."""
    return _derived(key, "workspace", resource_id)


def dashboard_ticket(key: bytes, resource_id: str) -> str:
    """What opens one cluster's dashboard through the control plane: derived, never stored."""
    return _derived(key, "dashboard", resource_id)


def _derived(key: bytes, purpose: str, resource_id: str) -> str:
    return hmac.new(key, f"{purpose}:{resource_id}".encode(), hashlib.sha256).hexdigest()[:48]
