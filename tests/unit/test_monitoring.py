"""The monitoring store, alert rules and idle detection, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.control.idle import Activity, active_at, reclaim_idle
from service.core.control.state import Status
from service.database.db import make_engine, migrate, session_factory
from service.database.models import AlertEvent, Process, Reclaim, Resource, SampleChunk
from service.errors import InvalidInput
from service.monitoring.alert_rules import AlertRuleSetting
from service.monitoring.alerts import Alerts, Running
from service.monitoring.chunks import chunks_of
from service.monitoring.metric_names import STANDARD_METRICS
from service.monitoring.samples import WireSample
from service.monitoring.series import SourceReading, Window, compact, insert_chunks, series

T0 = 1_800_000_000.0  # a whole minute (divisible by 60)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    migrate(engine)
    factory = session_factory(engine)
    with factory.begin() as session:
        for rid in ("r1", "r2"):
            session.add(
                Resource(
                    id=rid,
                    owner="a",
                    type="cluster",
                    name=rid,
                    recipe={"type": "cluster", "name": rid, "spec": {"auto_shutoff": "10s"}},
                    target="running",
                    status=Status.RUNNING,
                    status_changed_at=datetime.fromtimestamp(T0, UTC),
                )
            )
    yield factory
    engine.dispose()


def insert_samples(
    session: Session, resource_id: str, samples: list[WireSample], received_at: float
) -> int:
    return insert_chunks(session, resource_id, chunks_of(samples), received_at)


def gpu(at: float, util: float, source: str = "gpu:GPU-1", **more: float) -> WireSample:
    return WireSample(time=at, source=source, values={"gpu_utilization_percent": util, **more})


def test_raw_queries_bucket_by_step_per_source(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        samples = [gpu(T0 + i, float(i)) for i in range(60)]
        samples += [gpu(T0 + i, 100.0, source="gpu:GPU-2") for i in range(0, 60, 2)]
        insert_samples(session, "r1", samples, T0 + 60)
        insert_samples(session, "r2", [gpu(T0, 50.0)], T0 + 60)  # another resource: never mixed in
    window = Window.of(T0, T0 + 60, 20)
    with sessions() as session:
        avg = series(session, "r1", "gpu_utilization_percent", window, "avg", raw_since=0)
        top = series(session, "r1", "gpu_utilization_percent", window, "max", raw_since=0)
    assert avg["resolution"] == "raw"
    by_source = {s["source"]: s["points"] for s in avg["series"]}
    assert by_source["gpu:GPU-1"] == [[T0, 9.5], [T0 + 20, 29.5], [T0 + 40, 49.5]]
    assert by_source["gpu:GPU-2"] == [[T0, 100.0], [T0 + 20, 100.0], [T0 + 40, 100.0]]
    assert top["series"][0]["points"][0] == [T0, 19.0]


def test_compaction_rolls_up_whole_minutes_and_expires_old_data(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        # 3 minutes at 1 Hz: values 0..179
        insert_samples(session, "r1", [gpu(T0 + i, float(i % 100)) for i in range(180)], T0 + 179)
    with sessions.begin() as session:
        done = compact(session, now=T0 + 180 + 120, raw_retention=3600, rollup_retention=86400)
    assert done.minutes_rolled_up == 3 and done.rollups_written == 3
    with sessions.begin() as session:  # a second pass has nothing new to do
        again = compact(session, now=T0 + 180 + 125, raw_retention=3600, rollup_retention=86400)
    assert again.rollups_written == 0
    window = Window.of(T0, T0 + 180, 60)
    with sessions() as session:
        # raw_since after the window's start: rollups must answer
        rolled = {
            agg: series(session, "r1", "gpu_utilization_percent", window, agg, raw_since=T0 + 1)
            for agg in ("avg", "min", "max")
        }
        raw = series(
            session, "r1", "gpu_utilization_percent", Window.of(T0, T0 + 180, 59), "avg", 0
        )
    assert {agg: r["resolution"] for agg, r in rolled.items()} == dict.fromkeys(rolled, "1m")
    averages = rolled["avg"]["series"][0]["points"]
    assert averages == [[T0, 29.5], [T0 + 60, pytest.approx(3370 / 60)], [T0 + 120, 49.5]]
    assert [p[1] for p in rolled["min"]["series"][0]["points"]] == [0.0, 0.0, 20.0]
    assert [p[1] for p in rolled["max"]["series"][0]["points"]] == [59.0, 99.0, 79.0]
    assert raw["resolution"] == "raw"  # a step under a minute inside the raw window
    with sessions.begin() as session:  # late samples for minute 2: it is rolled up again
        late = [gpu(T0 + 60 + i / 10, 1000.0) for i in range(10)]
        insert_samples(session, "r1", late, received_at=T0 + 180 + 128)
    with sessions.begin() as session:
        redone = compact(session, now=T0 + 180 + 130, raw_retention=3600, rollup_retention=86400)
    assert (redone.minutes_rolled_up, redone.rollups_written) == (1, 1)  # just minute 2, again
    with sessions() as session:
        late = series(session, "r1", "gpu_utilization_percent", window, "max", raw_since=T0 + 1)
    assert [p[1] for p in late["series"][0]["points"]] == [59.0, 1000.0, 79.0]
    with sessions.begin() as session:  # a day later: raw samples are gone, rollups stay
        gone = compact(
            session, now=T0 + 2 * 86400 - 600, raw_retention=3600, rollup_retention=2 * 86400
        )
    assert gone.chunks_removed == 2 and gone.rollups_removed == 0  # two chunks
    with sessions.begin() as session:
        assert session.scalar(select(SampleChunk.id).limit(1)) is None
        expired = compact(session, now=T0 + 3 * 86400, raw_retention=3600, rollup_retention=86400)
    assert expired.rollups_removed == 3


def test_windows_refuse_what_cannot_be_answered() -> None:
    with pytest.raises(InvalidInput, match="to: must be after from"):
        Window.of(T0, T0, None)
    with pytest.raises(InvalidInput, match="use step=8 or more"):
        Window.of(T0, T0 + 86400, 1)
    assert Window.of(T0, T0 + 86400, None).step == 173  # about 500 points by default
    # Over an hour, the default step is at least a minute: rollups answer, not raw chunks.
    assert Window.of(T0, T0 + 4 * 3600, None).step == 60
    assert Window.of(T0, T0 + 3600, None).step == 8  # an hour or less: raw, finer
    assert Window.of(T0, T0 + 4 * 3600, 30).step == 30  # asked for: raw


def _events(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.scalars(select(AlertEvent).order_by(AlertEvent.id))
        return [(e.rule, e.source, e.state) for e in rows]


def test_a_threshold_must_hold_for_its_duration_to_fire_and_resolves_when_it_stops(
    sessions: sessionmaker[Session],
) -> None:
    hot = AlertRuleSetting(
        name="hot", metric="gpu_temperature_celsius", threshold=85, for_seconds=60
    )
    alerts = Alerts([hot])

    def temps(start: int, values: list[float]) -> list[WireSample]:
        return [
            WireSample(
                time=T0 + start + i, source="gpu:GPU-1", values={"gpu_temperature_celsius": v}
            )
            for i, v in enumerate(values)
        ]

    with sessions.begin() as session:
        alerts.observe(
            session, "r1", chunks_of(temps(0, [90] * 50 + [80] + [90] * 59))
        )  # broken at 50s
    assert _events(sessions) == []
    with sessions.begin() as session:
        alerts.observe(session, "r1", chunks_of(temps(110, [91, 92])))  # 60s since the break
    assert _events(sessions) == [("hot", "gpu:GPU-1", "firing")]
    with sessions.begin() as session:
        alerts.observe(session, "r1", chunks_of(temps(112, [70])))
    assert _events(sessions) == [("hot", "gpu:GPU-1", "resolved")]
    notices = alerts.take_notices()
    assert [n["state"] for n in notices] == ["firing", "resolved"]
    assert "gpu_temperature_celsius > 85 for 60s on gpu:GPU-1" in notices[0]["message"]


def test_silence_from_a_running_resource_fires_and_samples_resolve_it(
    sessions: sessionmaker[Session],
) -> None:
    alerts = Alerts([AlertRuleSetting(name="silent", metric="no_samples", for_seconds=30)])
    running = [Running("r1", since=T0)]
    with sessions.begin() as session:
        alerts.check_silence(session, T0 + 20, running, {"r1": T0 + 5})
    assert _events(sessions) == []
    with sessions.begin() as session:
        alerts.check_silence(session, T0 + 40, running, {"r1": T0 + 5})
        alerts.check_silence(session, T0 + 41, running, {"r1": T0 + 5})  # fires once
    assert _events(sessions) == [("silent", "", "firing")]
    with sessions.begin() as session:
        alerts.observe(session, "r1", chunks_of([gpu(T0 + 42, 0.0)]))
    assert _events(sessions) == [("silent", "", "resolved")]
    fresh = Alerts([AlertRuleSetting(name="silent", metric="no_samples", for_seconds=30)])
    with sessions.begin() as session:  # a restarted control plane knows what is open
        fresh.check_silence(session, T0 + 100, running, {})
    with sessions() as session:
        fresh.load(session)
    assert len(fresh.firing) == 1


def test_activity_is_gpu_use_dask_tasks_or_a_busy_kernel() -> None:
    def reading(**values: float) -> SourceReading:
        return SourceReading(T0, values, {}, "scheduler")

    def busy(previous: SourceReading | None = None, **values: float) -> float:
        [chunk] = chunks_of([WireSample(time=T0 + 1, source="x", values=values)])
        return active_at(chunk, previous, 2)

    assert busy(gpu_utilization_percent=3) == T0 + 1
    assert busy(gpu_utilization_percent=2) == 0
    assert busy(dask_tasks_processing=1) == T0 + 1
    assert busy(jupyter_kernels_busy=1) == T0 + 1
    assert busy(reading(dask_tasks_completed_total=4), dask_tasks_completed_total=5) == T0 + 1
    assert busy(reading(dask_tasks_completed_total=5), dask_tasks_completed_total=5) == 0
    assert busy(host_cpu_percent=100) == 0
    samples = [
        WireSample(time=T0 + i, source="gpu:GPU-1", values={"gpu_utilization_percent": u})
        for i, u in enumerate([50, 0, 60, 1, 0])
    ]
    [chunk] = chunks_of(list(reversed(samples)))  # any order in: the last busy time out
    assert active_at(chunk, None, 2) == T0 + 2


def test_a_degraded_resource_is_judged_idle_like_a_running_one(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        degraded = session.get(Resource, "r1")
        assert degraded is not None
        degraded.status = Status.DEGRADED  # its scheduler runs while a worker is replaced
    heard = {"r1": T0 + 11, "r2": T0 + 11}
    with sessions.begin() as session:
        stopped = reclaim_idle(session, T0 + 12, Activity.begin(T0), heard, 30, 2)
    assert sorted(stopped) == ["r1", "r2"]


def test_idle_resources_are_stopped_with_the_reason_and_the_gpu_time_recorded(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        session.add(
            Process(
                resource_id="r1",
                name="worker-0",
                role="worker",
                spec_hash="x",
                state="running",
                gpus=["GPU-1", "GPU-2"],
            )
        )
    activity = Activity.begin(T0)
    activity.saw("r2", T0 + 8)  # r2 worked recently
    heard = {"r1": T0 + 11, "r2": T0 + 11}
    with sessions.begin() as session:
        assert reclaim_idle(session, T0 + 9, activity, heard, 30, 2) == []  # not idle for 10s yet
    with sessions.begin() as session:
        assert reclaim_idle(session, T0 + 12, activity, {"r2": T0 + 11}, 30, 2) == []  # r1 silent
    with sessions.begin() as session:
        assert reclaim_idle(session, T0 + 12, activity, heard, 30, 2) == ["r1"]
    with sessions() as session:
        r1 = session.get(Resource, "r1")
        assert r1 is not None and r1.target == "stopped" and r1.status == "stopping"
        assert r1.status_reason == "idle for 12s: GPU utilisation ≤ 2 %, no Dask tasks"
        [reclaim] = session.scalars(select(Reclaim)).all()
        assert (reclaim.gpus, reclaim.gpu_seconds) == (2, 24.0)


def test_every_metric_the_samplers_name_is_standard() -> None:
    """A sampler's new metric must be listed (GET /api/v1/telemetry/metrics answers it)."""
    workers = Path(__file__).resolve().parents[2] / "workers"
    named = set()
    for source in workers.glob("*.py"):
        named |= set(re.findall(r'"((?:gpu|host|process|dask|ray)_[a-z_]+)"', source.read_text()))
    # Counters the host sampler turns into rates: host_disk_read -> ..._bytes_per_second.
    missing = {
        name
        for name in named
        if name not in STANDARD_METRICS and f"{name}_bytes_per_second" not in STANDARD_METRICS
    }
    assert named and missing == set(), f"add to service/monitoring/metric_names.py: {missing}"
