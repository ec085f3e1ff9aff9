"""Authenticating requests: remembered tokens are forgotten when tokens are revoked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from service.core.auth import Authenticator, bootstrap_admin, issue_token
from service.errors import Unauthenticated
from service.store.db import make_engine, migrate, session_factory
from service.store.models import Token, User
from tests.conftest import make_settings


def test_a_revoked_token_is_refused_at_once_and_unknown_ones_never_pass(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    sessions = session_factory(engine)
    bootstrap_admin(sessions, settings)
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

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
