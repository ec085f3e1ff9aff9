"""Quotas are enforced where decisions commit: at apply and inside the allocation lock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.core.capacity.limits import QuotaLimits
from service.core.capacity.quotas import QuotaService
from service.core.control.state import Target
from service.core.identity.access import Principal
from service.core.identity.auth import create_user
from service.database.models import Process, Resource
from service.errors import Conflict, InvalidInput
from tests.planes import Plane, fake_gpus, plane


def user(p: Plane, name: str) -> Principal:
    with p.service.sessions.begin() as session:
        created = create_user(session, name)
        return Principal(created.id, name, False)


def gpu_cluster(name: str, gpu: float, owner: str | None = None) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "type": "cluster",
        "name": name,
        "spec": {"n_workers": 1, "worker": {"gpu": gpu}},
    }
    if owner:
        recipe["owner"] = owner
    return recipe


def held(p: Plane, owner: str) -> float:
    """GPUs the owner's live processes hold, shares counted as parts."""
    with p.service.sessions() as session:
        rows = session.execute(
            select(Process.gpus, Process.gpu_share)
            .join(Resource)
            .where(Resource.owner == owner, Process.state != "exited")
        ).all()
    return sum(len(gpus) * share for gpus, share in rows)


def test_fifty_concurrent_applies_never_pass_a_quota(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, database_url, gpus=fake_gpus(4)) as p:
            alice = user(p, "alice")
            quotas = QuotaService(p.service.sessions, p.service.settings.default_quota)
            quotas.put(p.admin, "alice", QuotaLimits(gpus=2, resources=8))

            def apply(index: int) -> str:
                try:
                    p.service.apply(alice, gpu_cluster(f"c{index}", 0.5 if index % 2 else 1))
                except Conflict as exc:
                    assert "may run 8 resources at once" in str(exc)
                    return "refused"
                return "admitted"

            results = await asyncio.gather(*(asyncio.to_thread(apply, i) for i in range(50)))
            assert results.count("admitted") == 8
            for _ in range(30):  # while the reconciler places what was admitted
                assert held(p, "alice") <= 2 + 1e-9
                await asyncio.sleep(0.1)
            views = p.service.list_visible(alice)
            assert len(views) == 8
            assert held(p, "alice") >= 1.5  # it used its quota, not less
            # Their schedulers run; the workers wait for quota.
            waiting = [v for v in views if v["status"] == "degraded"]
            assert waiting and all(
                "waiting for quota of 'alice'" in v["status_reason"] for v in waiting
            )
            assert quotas.get(alice, "alice")["use"]["resources"] == 8
            # Capacity of the node is not the limit: another user still gets GPUs.
            bob = user(p, "bob")
            p.service.apply(bob, gpu_cluster("b", 1))
            await p.until(lambda: p.service.get(bob, "cluster", "b", None)["status"] == "running")
            # Freeing quota lets the waiting ones start.
            running = [v["name"] for v in views if v["status"] == "running"]
            for name in running:
                p.service.set_target(alice, "cluster", name, None, Target.DELETED)
            await p.until(lambda: held(p, "alice") >= 1.5 and _started(p, alice, running))
            assert held(p, "alice") <= 2 + 1e-9

    asyncio.run(scenario())


def _started(p: Plane, who: Principal, gone: list[str]) -> bool:
    views = p.service.list_visible(who)
    return any(v["status"] == "running" and v["name"] not in gone for v in views)


def test_a_recipe_larger_than_the_quota_is_refused_at_apply(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(4), default_quota={"gpus": 1}) as p:
            alice = user(p, "alice")
            with pytest.raises(InvalidInput) as caught:
                p.service.apply(alice, gpu_cluster("big", 2))
            message = str(caught.value)
            assert "asks for 2 GPUs but the quota of 'alice' is 1" in message
            assert "now in use: 0 GPUs" in message
            with pytest.raises(InvalidInput, match="quota"):
                p.service.plan(alice, gpu_cluster("big", 2))
            assert p.service.list_visible(alice) == []  # nothing half-made
            p.service.apply(alice, gpu_cluster("fits", 1))
            await p.until(
                lambda: p.service.get(alice, "cluster", "fits", None)["status"] == "running"
            )

    asyncio.run(scenario())


def test_starting_a_stopped_resource_counts_against_the_running_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", default_quota={"resources": 1}) as p:
            alice = user(p, "alice")
            job = {"type": "job", "name": "a", "spec": {"command": "x"}}
            p.service.apply(alice, job)
            with pytest.raises(Conflict, match="may run 1 resource at once"):
                p.service.apply(alice, {**job, "name": "b"})
            p.service.set_target(alice, "job", "a", None, Target.STOPPED)
            p.service.apply(alice, {**job, "name": "b"})
            with pytest.raises(Conflict, match="stop or delete one first"):
                p.service.set_target(alice, "job", "a", None, Target.RUNNING)

    asyncio.run(scenario())
