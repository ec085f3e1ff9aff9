"""The store: migrations create exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.core.control.records import lock_resource
from service.core.control.state import Status, set_status
from service.database.db import make_engine, migrate, session_factory
from service.database.models import Base, Resource, StatusEvent


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # running again on start is a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
    assert {"users", "tokens", "resources", "processes", "status_events"} <= tables


def test_status_changes_are_kept_as_history(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        resource = _a_job()
        session.add(resource)
        session.flush()
        assert set_status(session, resource, Status.STARTING, "starting job")
        assert not set_status(session, resource, Status.STARTING, "starting job")  # no-op
        assert set_status(session, resource, Status.RUNNING, "1 process(es) running")
    with sessions() as session:
        events = session.query(StatusEvent).order_by(StatusEvent.id).all()
        assert [(e.from_status, e.to_status, e.reason) for e in events] == [
            ("pending", "starting", "starting job"),
            ("starting", "running", "1 process(es) running"),
        ]
        assert all(e.at.tzinfo is not None for e in events)
    engine.dispose()


def test_a_read_then_write_transaction_loses_no_concurrent_change(database_url: str) -> None:
    """Two writers each read a counter and write it back one higher, at once: with the
    resource locked (records.lock_resource: SQLite's writer lock, PostgreSQL's row lock),
    none of the 2 x 20 increments is lost. (Unlocked, a job's exit was once recorded over
    a delete asked for at that moment.)"""
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.add(_a_job())

    def increment() -> None:
        for _ in range(20):
            with sessions.begin() as session:
                resource = lock_resource(session, "r1")
                assert resource is not None
                seen = resource.failures
                time.sleep(0.002)  # the other writer gets every chance to come between
                resource.failures = seen + 1

    writers = [threading.Thread(target=increment) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    with sessions() as session:
        resource = session.get(Resource, "r1")
        assert resource is not None and resource.failures == 40
    engine.dispose()


def _a_job() -> Resource:
    """A pending job resource, r1, to store."""
    return Resource(
        id="r1", owner="a", type="job", name="j", recipe={}, target="running", status=Status.PENDING
    )
