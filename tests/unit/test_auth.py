"""Authenticating requests: remembered tokens are forgotten when tokens are revoked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.identity.auth import Authenticator, bootstrap_admin, issue_token, new_token
from service.database.db import make_engine, migrate, session_factory
from service.database.models import Token, User, utcnow
from service.errors import TooManyRequests, Unauthenticated
from tests.conftest import make_settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], str]]:
    """A migrated store with the first admin, and that admin's token as a header."""
    settings = make_settings(tmp_path)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    sessions = session_factory(engine)
    yield sessions, f"Bearer {bootstrap_admin(sessions, settings)}"
    engine.dispose()


def test_a_revoked_token_is_refused_at_once_and_unknown_ones_never_pass(
    store: tuple[sessionmaker[Session], str],
) -> None:
    sessions, _ = store
    with sessions.begin() as session:
        admin = session.scalars(select(User)).one()
        secret = issue_token(session, admin, name="process:worker-0", resource_id=None)
    authenticate = Authenticator(sessions, seconds=60)

    async def scenario() -> None:
        header = f"Bearer {secret}"
        assert (await authenticate(header)).user_name == "admin"
        with sessions.begin() as session:
            session.execute(delete(Token).where(Token.name == "process:worker-0"))
        assert (await authenticate(header)).user_name == "admin"  # remembered (<= 60 s)
        authenticate.revoked()  # what the reconciler calls after revoking tokens
        with pytest.raises(Unauthenticated, match="not valid"):
            await authenticate(header)
        with pytest.raises(Unauthenticated, match="Bearer"):
            await authenticate("Basic abc")
        with pytest.raises(Unauthenticated, match="not valid"):
            await authenticate("Bearer titan_unknown")

    asyncio.run(scenario())


def test_a_limited_client_s_guesses_are_never_looked_up(
    store: tuple[sessionmaker[Session], str],
) -> None:
    sessions, known = store
    with sessions.begin() as session:
        admin = session.scalars(select(User)).one()
        fresh = f"Bearer {issue_token(session, admin, name='never used')}"
    authenticate = Authenticator(sessions, seconds=60, failures_allowed=3)

    async def scenario() -> None:
        await authenticate(known, "10.0.0.1")  # found valid once: vouched for from now on
        for _ in range(3):
            with pytest.raises(Unauthenticated):
                await authenticate("Bearer titan_guess", "10.0.0.1")
        looked_up = authenticate.lookups
        for header in ("Bearer titan_guess", fresh, "Basic abc"):
            with pytest.raises(TooManyRequests, match="too many failed authentications"):
                await authenticate(header, "10.0.0.1")
        assert authenticate.lookups == looked_up  # not one guess reached the store
        assert (await authenticate(known, "10.0.0.1")).user_name == "admin"  # remembered
        authenticate.revoked()  # forgotten, but still known to have been valid: checked
        assert (await authenticate(known, "10.0.0.1")).user_name == "admin"
        assert authenticate.lookups == looked_up + 1
        assert (await authenticate(fresh, "10.0.0.2")).user_name == "admin"  # another client

    asyncio.run(scenario())


def test_a_remembered_token_is_forgotten_when_it_expires(
    store: tuple[sessionmaker[Session], str],
) -> None:
    sessions, _ = store
    with sessions.begin() as session:
        admin = session.scalars(select(User)).one()
        soon = utcnow() + timedelta(seconds=1)
        header = f"Bearer {new_token(session, admin, 'short', expires_at=soon)[1]}"
    authenticate = Authenticator(sessions, seconds=600)

    async def scenario() -> None:
        assert (await authenticate(header)).user_name == "admin"
        await asyncio.sleep(1.1)
        with pytest.raises(Unauthenticated, match="expired"):
            await authenticate(header)

    asyncio.run(scenario())
