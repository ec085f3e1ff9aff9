"""A control plane without HTTP (service + reconciler + fake backend) on a real store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.core.capacity.ledger import GPU, Inventory
from service.core.control.reconciler import Reconciler
from service.core.control.state import Target
from service.core.identity.access import Principal
from service.core.identity.auth import bootstrap_admin
from service.core.workloads.resources import ResourceService
from service.database.db import make_engine, migrate, session_factory
from service.database.models import User
from tests.conftest import make_settings
from tests.fakes import FakeBackend


@dataclass
class Plane:
    """A control plane without HTTP: service + reconciler + fake backend."""

    service: ResourceService
    reconciler: Reconciler
    backend: FakeBackend
    admin: Principal

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        return self.service.apply(self.admin, data)

    def get(self, type: str, name: str) -> dict[str, Any]:
        return self.service.get(self.admin, type, name, None)

    def history(self, type: str, name: str) -> list[dict[str, Any]]:
        return self.service.history(self.admin, type, name, None)

    def target(self, type: str, name: str, target: Target) -> None:
        self.service.set_target(self.admin, type, name, None, target)

    async def until(self, check: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(check):
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.05)

    async def status(self, type: str, name: str, status: str, timeout: float = 10) -> None:
        await self.until(lambda: self.get(type, name)["status"] == status, timeout)


@asynccontextmanager
async def plane(
    tmp_path: Path,
    database_url: str,
    backend: FakeBackend | None = None,
    gpus: list[GPU] | None = None,
    **overrides: Any,
) -> AsyncIterator[Plane]:
    settings = make_settings(tmp_path, database_url, **overrides)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    sessions = session_factory(engine)
    bootstrap_admin(sessions, settings)
    with sessions() as session:
        admin = session.scalars(select(User)).one()
        principal = Principal(admin.id, admin.name, True)
    fake = backend or FakeBackend()
    inventory = Inventory("test-node", cpus=8, memory_bytes=64 * 1024**3, gpus=gpus or [])
    reconciler = Reconciler(sessions, fake, settings, b"k" * 32, inventory=inventory)
    service = ResourceService(sessions, settings, fake, reconciler.wake, b"k" * 32)
    await reconciler.start()
    try:
        yield Plane(service, reconciler, fake, principal)
    finally:
        await reconciler.close()
        engine.dispose()


def fake_gpus(count: int) -> list[GPU]:
    """A GPU inventory standing in for NVML on this CPU machine."""
    return [GPU(i, f"GPU-{i:08d}-fake", "Fake H100", 80 * 1024**3) for i in range(count)]
