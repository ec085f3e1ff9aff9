"""Fixtures shared by every test layer: settings, databases and the leak check."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from service.config import Settings

# The backend contract's tests live outside test modules: rewrite their asserts too.
pytest.register_assert_rewrite("tests.backend_contract")

POSTGRES_URL = os.environ.get("TITAN_TEST_POSTGRES_URL")
# Processes of the local backend run as these OS accounts, never as root (see accounts.py):
# every user's as TEST_ACCOUNT, and OTHER_ACCOUNT for a second person where a test needs two.
TEST_ACCOUNT = "titantest"
OTHER_ACCOUNT = "titantest2"
USERS_ROOT = Path("/tmp/titantest-users")  # reachable by those accounts (tmp_path is not)


def users_dir_for(root: Path) -> Path:
    """The users' folder of a test whose temporary folder is ``root``."""
    return USERS_ROOT / hashlib.sha256(str(root).encode()).hexdigest()[:12]


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: object) -> Settings:
    """Settings for tests: fast resync and backoff, a private data directory, every user's
    processes run as ``TEST_ACCOUNT`` with their folders under ``users_dir_for``."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "users_dir": users_dir_for(data_dir.parent),
        "os_accounts": {"*": TEST_ACCOUNT},
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
    places = (str(root), str(users_dir_for(root)))
    for proc in psutil.process_iter():
        try:
            if proc.pid not in before and str(proc.cwd()).startswith(places):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    found.pop(me.pid, None)
    return list(found.values())


@pytest.fixture(scope="session", autouse=True)
def test_accounts() -> None:
    """The OS accounts user processes run as (made once, as an operator would), and a
    check that they reach this Python and this source tree."""
    if os.geteuid() != 0:
        pytest.exit("the tests run user processes as other OS accounts: run them as root", 2)
    for name in (TEST_ACCOUNT, OTHER_ACCOUNT):
        if subprocess.run(["id", "-u", name], capture_output=True).returncode != 0:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
            )
    USERS_ROOT.mkdir(mode=0o711, exist_ok=True)
    USERS_ROOT.chmod(0o711)
    probe = ["runuser", "-u", TEST_ACCOUNT, "--", sys.executable, "-c", "import workers.entrypoint"]
    found = subprocess.run(probe, capture_output=True, text=True, cwd="/")
    if found.returncode != 0:
        pytest.exit(
            f"the OS account {TEST_ACCOUNT!r} cannot run {sys.executable} with this source tree "
            f"({found.stderr.strip()[-300:]}); make them reachable (chmod o+x on the folders "
            "above them), as .ci/run does",
            2,
        )


@pytest.fixture(autouse=True)
def no_leaked_processes(tmp_path: Path) -> Iterator[None]:
    """Fail a test that leaves a process running (its own children or anything in tmp_path
    or its users' folder); the users' folder is removed after."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + 15
    leftovers = _leftovers(tmp_path, before)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = [p for p in leftovers if p.is_running() and p.status() != "zombie"]
    described = [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in leftovers]
    for proc in leftovers:
        proc.kill()
    shutil.rmtree(users_dir_for(tmp_path), ignore_errors=True)
    if leftovers:
        pytest.fail(f"test left processes running: {described}")
