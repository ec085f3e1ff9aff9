"""Fixtures shared by every test layer: settings, databases and the leak check."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from service.config import Settings

POSTGRES_URL = os.environ.get("TITAN_TEST_POSTGRES_URL")


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: object) -> Settings:
    """Settings for tests: fast resync and backoff, a private data directory."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "port": 0,
        "resync_seconds": 0.2,
        "backoff_base_seconds": 0.2,
        "backoff_max_seconds": 2.0,
        "stop_timeout_seconds": 5.0,
        "start_timeout_seconds": 60.0,
        "telemetry_push_seconds": 1.0,
        "alert_interval_seconds": 0.5,
        "idle_check_seconds": 0.5,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'titan.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set TITAN_TEST_POSTGRES_URL to run against PostgreSQL")
    import psycopg

    name = f"titan_test_{uuid.uuid4().hex[:12]}"
    admin_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _leftovers(root: Path, before: set[int]) -> list[psutil.Process]:
    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True) if p.pid not in before}
    for proc in psutil.process_iter():
        try:
            if proc.pid not in before and str(proc.cwd()).startswith(str(root)):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    found.pop(me.pid, None)
    return list(found.values())


@pytest.fixture(autouse=True)
def no_leaked_processes(tmp_path: Path) -> Iterator[None]:
    """Fail a test that leaves a process running (its own children or anything in tmp_path)."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + 15
    leftovers = _leftovers(tmp_path, before)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = [p for p in leftovers if p.is_running() and p.status() != "zombie"]
    if leftovers:
        described = [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in leftovers]
        for proc in leftovers:
            proc.kill()
        pytest.fail(f"test left processes running: {described}")
