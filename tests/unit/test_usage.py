"""Usage is computed from the allocation log, split by UTC day, and kept after deletion."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from service.core.capacity.usage import UsageService, _split_by_day
from service.core.control.state import Target
from service.database.models import Allocation
from tests.planes import fake_gpus, plane


def test_hours_are_split_at_utc_midnight() -> None:
    parts = _split_by_day(
        datetime(2026, 3, 1, 22, 30, tzinfo=UTC), datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    )
    assert parts == [(date(2026, 3, 1), 1.5), (date(2026, 3, 2), 24.0), (date(2026, 3, 3), 1.0)]


def test_gpu_and_cpu_hours_come_from_what_processes_held(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(2)) as p:
            usage = UsageService(p.service.sessions)
            recipe = {
                "type": "cluster",
                "name": "g",
                "spec": {"n_workers": 2, "worker": {"gpu": 0.5, "nthreads": 2}, "resources": {}},
            }
            p.apply(recipe)
            await p.status("cluster", "g", "running")
            await asyncio.sleep(1.0)
            p.target("cluster", "g", Target.DELETED)
            await p.until(lambda: p.service.list_visible(p.admin) == [])

            def ended() -> bool:
                with p.service.sessions() as session:
                    rows = session.scalars(select(Allocation)).all()
                    return len(rows) == 3 and all(r.ended_at is not None for r in rows)

            await p.until(ended)  # the reconciler's resync ends the log rows
            report = usage.report(p.admin, None, None, None)
            (day,) = report["days"]
            assert day["owner"] == "admin" and day["day"] == datetime.now(UTC).date().isoformat()
            seconds = day["gpu_hours"] * 3600  # two half GPUs for about a second
            assert 0.9 <= seconds <= 10, day
            assert day["cpu_hours"] * 3600 >= 2 * 2 * 0.9  # two workers of 2 threads
            again = usage.report(p.admin, None, None, None)
            assert again == report  # ended rows no longer grow

    asyncio.run(scenario())
