"""Jobs' runs on the control loop (the schedule loop beside the reconciler, a fake backend,
a real store), its clock moved by hand: scheduled runs, each concurrency policy, retries,
timeouts, missed runs, run records, old runs' logs and the history's retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from service.core.control.schedules import Scheduler
from service.core.control.state import Phase, Target
from service.core.workloads.runs import RunService
from service.database.db import make_engine, session_factory
from service.database.models import JobRun, Process, utcnow
from service.errors import Conflict
from tests.fakes import FakeBackend, FakeMachine
from tests.planes import Plane, plane


@dataclass
class Clock:
    """The schedule loop's clock: real time when made, then moved by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def to_next_minute(self, seconds: float = 1) -> None:
        """Move to ``seconds`` past the next whole minute."""
        start = self.now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        self.now = start + timedelta(seconds=seconds)


@dataclass
class Jobs:
    plane: Plane
    scheduler: Scheduler
    runs: RunService
    clock: Clock

    def apply(self, name: str, **spec: Any) -> None:
        self.plane.apply({"type": "job", "name": name, "spec": {"command": "x", **spec}})

    def list(self, name: str) -> list[dict[str, Any]]:
        return list(reversed(self.runs.list(self.plane.admin, name, None)))

    def statuses(self, name: str) -> list[tuple[int, str, str]]:
        return [(r["number"], r["trigger"], r["status"]) for r in self.list(name)]

    async def tick(self) -> list[str]:
        return await self.scheduler.tick()

    async def run_status(self, name: str, number: int, status: str) -> None:
        def reached() -> bool:
            runs = {r["number"]: r["status"] for r in self.list(name)}
            return runs.get(number) == status

        await self.plane.until(reached)


@asynccontextmanager
async def jobs(
    tmp_path: Path, backend: FakeBackend | None = None, **settings: Any
) -> AsyncIterator[Jobs]:
    async with plane(tmp_path, "", backend, **settings) as p:
        clock = Clock(utcnow())
        scheduler = Scheduler(
            p.service.sessions, p.service.settings, p.reconciler.wake, p.service.admitting, clock
        )
        yield Jobs(p, scheduler, RunService(p.service), clock)


def test_a_scheduled_job_waits_for_its_schedule_then_runs_each_due_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("nightly", schedule="* * * * *")
            assert j.plane.get("job", "nightly")["status"] == "stopped"
            assert await j.tick() == []  # nothing due yet
            await asyncio.sleep(0.5)
            assert j.plane.backend.starts == [] and j.list("nightly") == []

            j.clock.to_next_minute()
            assert len(await j.tick()) == 1
            await j.plane.status("job", "nightly", "running")
            first = j.list("nightly")[0]
            assert (first["number"], first["trigger"], first["status"]) == (
                1,
                "schedule",
                "running",
            )
            assert first["scheduled_for"] == j.clock.now.replace(second=0).isoformat()
            assert await j.tick() == []  # the same due time never starts twice

            j.plane.backend.exit("job", 0)
            await j.run_status("nightly", 1, "succeeded")
            assert j.list("nightly")[0]["exit_code"] == 0
            j.clock.to_next_minute()
            await j.tick()
            await j.run_status("nightly", 2, "running")
            await j.plane.until(lambda: j.plane.backend.starts.count("job") == 2)
            assert j.statuses("nightly") == [
                (1, "schedule", "succeeded"),
                (2, "schedule", "running"),
            ]

    asyncio.run(scenario())


def test_forbid_skips_a_due_time_while_a_run_goes_on_and_refuses_a_manual_run(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("f", schedule="* * * * *")
            j.clock.to_next_minute()
            await j.tick()
            await j.plane.status("job", "f", "running")
            j.clock.to_next_minute()
            await j.tick()
            assert j.statuses("f") == [(1, "schedule", "running"), (2, "schedule", "skipped")]
            assert "run 1 was still running (concurrency_policy Forbid)" in j.list("f")[1]["reason"]
            with pytest.raises(Conflict, match="run 1 is still running"):
                j.runs.run_now(j.plane.admin, "f", None)
            await asyncio.sleep(0.3)
            assert j.plane.backend.starts == ["job"]

    asyncio.run(scenario())


def test_replace_stops_the_running_run_and_starts_the_due_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("r", schedule="* * * * *", concurrency_policy="Replace")
            j.clock.to_next_minute()
            await j.tick()
            await j.plane.status("job", "r", "running")
            first_pid = j.plane.backend.pid_of("job")
            j.clock.to_next_minute()
            await j.tick()
            await j.plane.until(lambda: j.plane.backend.starts.count("job") == 2)
            await j.plane.status("job", "r", "running")
            assert j.plane.backend.pid_of("job") != first_pid
            assert not j.plane.backend.machine.processes[first_pid].running
            runs = j.list("r")
            assert [(r["number"], r["status"]) for r in runs] == [(1, "stopped"), (2, "running")]
            assert "replaced by a scheduled run" in runs[0]["reason"]
            # A manual run replaces too.
            j.runs.run_now(j.plane.admin, "r", None)
            await j.plane.until(lambda: j.plane.backend.starts.count("job") == 3)
            assert j.statuses("r")[-1] == (3, "manual", "running")
            j.plane.backend.exit("job", 0)
            await j.run_status("r", 3, "succeeded")
            assert [r["status"] for r in j.list("r")] == ["stopped", "stopped", "succeeded"]

    asyncio.run(scenario())


def test_a_failing_run_is_retried_with_backoff_until_its_retries_are_spent(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("flaky", retries=2, retry_backoff="10s")  # no schedule: runs now
            await j.plane.status("job", "flaky", "running")
            j.plane.backend.exit("job", 1)
            await j.run_status("flaky", 1, "failed")
            ended = datetime.fromisoformat(j.list("flaky")[0]["finished_at"])
            j.clock.now = ended + timedelta(seconds=9)
            assert await j.tick() == []  # the first retry waits 10s
            j.clock.now = ended + timedelta(seconds=10)
            await j.tick()
            await j.plane.status("job", "flaky", "running")
            assert j.statuses("flaky") == [(1, "manual", "failed"), (2, "retry", "running")]
            assert j.list("flaky")[1]["attempt"] == 2

            j.plane.backend.exit("job", 1)
            await j.run_status("flaky", 2, "failed")
            ended = datetime.fromisoformat(j.list("flaky")[1]["finished_at"])
            j.clock.now = ended + timedelta(seconds=19)
            assert await j.tick() == []  # the second waits 20s
            j.clock.now = ended + timedelta(seconds=20)
            await j.tick()
            await j.run_status("flaky", 3, "running")
            await j.plane.status("job", "flaky", "running")
            j.plane.backend.exit("job", 1)
            await j.run_status("flaky", 3, "failed")
            j.clock.now += timedelta(hours=2)
            assert await j.tick() == []  # 1 run + 2 retries: done
            assert [r["attempt"] for r in j.list("flaky")] == [1, 2, 3]
            assert j.plane.backend.starts.count("job") == 3

    asyncio.run(scenario())


def test_a_run_over_its_timeout_is_stopped_and_recorded_as_timed_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("slow", timeout="30s")
            await j.plane.status("job", "slow", "running")
            started = datetime.fromisoformat(j.list("slow")[0]["started_at"])
            j.clock.now = started + timedelta(seconds=29)
            assert await j.tick() == []
            j.clock.now = started + timedelta(seconds=30)
            await j.tick()
            await j.plane.status("job", "slow", "stopped")
            run = j.list("slow")[0]
            assert run["status"] == "timed_out" and "timeout (30s)" in run["reason"]
            assert j.plane.backend.running() == []
            assert "timed out" in j.plane.get("job", "slow")["status_reason"]

    asyncio.run(scenario())


def test_after_an_outage_the_latest_due_time_runs_within_the_deadline_and_the_rest_are_missed(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("m", schedule="* * * * *", starting_deadline="30s")
            j.clock.to_next_minute(seconds=0)
            first_due = j.clock.now
            await j.tick()
            await j.plane.status("job", "m", "running")
            j.plane.backend.exit("job", 0)
            await j.run_status("m", 1, "succeeded")
            # Away for five minutes and 20 seconds: 4 due times missed, the 5th runs.
            j.clock.now = first_due + timedelta(minutes=5, seconds=20)
            await j.tick()
            await j.tick()  # again: nothing is decided twice
            assert j.statuses("m") == [
                (1, "schedule", "succeeded"),
                (2, "schedule", "missed"),
                (3, "schedule", "missed"),
                (4, "schedule", "missed"),
                (5, "schedule", "missed"),
                (6, "schedule", "running"),
            ]
            due = [r["scheduled_for"] for r in j.list("m")]
            assert due == [(first_due + timedelta(minutes=n)).isoformat() for n in range(6)]
            await j.plane.until(lambda: j.plane.backend.starts.count("job") == 2)
            # Past the deadline, the latest is missed too.
            j.plane.backend.exit("job", 0)
            await j.run_status("m", 6, "succeeded")
            j.clock.now = first_due + timedelta(minutes=8, seconds=40)
            await j.tick()
            assert [s for _, _, s in j.statuses("m")][6:] == ["missed", "missed", "missed"]
            j.clock.now = first_due + timedelta(minutes=10, seconds=5)  # 2 due, 2nd runs
            await j.tick()
            assert [s for _, _, s in j.statuses("m")][9:] == ["missed", "running"]

    asyncio.run(scenario())


def test_each_run_keeps_its_logs_and_the_history_keeps_the_newest(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path, job_runs_kept=3) as j:
            j.apply("h")
            for number in range(1, 6):
                if number > 1:
                    j.plane.target("job", "h", Target.RUNNING)  # start it again: a new run
                await j.run_status("h", number, "running")
                await j.plane.until(lambda n=number: j.plane.backend.starts.count("job") == n)
                j.plane.backend.exit("job", number)
                await j.run_status("h", number, "failed")
            numbers = [r["number"] for r in j.list("h")]
            assert numbers == [3, 4, 5]
            logs = await j.plane.service.logs(j.plane.admin, "job", "h", None, run=4)
            assert "log of job" in logs["processes"]["job"]["text"]
            exits = [r["exit_code"] for r in j.list("h")]
            assert exits == [3, 4, 5]

    asyncio.run(scenario())


def test_a_suspended_schedule_starts_nothing_and_resumed_counts_from_then(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("s", schedule="* * * * *", suspend=True)
            j.clock.now += timedelta(minutes=10)
            assert await j.tick() == [] and j.list("s") == []
            # Resumed: the ten minutes before are not "missed", and the next due time runs.
            j.apply("s", schedule="* * * * *")
            j.clock.now = utcnow()
            assert await j.tick() == []
            j.clock.to_next_minute()
            await j.tick()
            assert j.statuses("s") == [(1, "schedule", "running")]

    asyncio.run(scenario())


def test_starting_a_scheduled_job_runs_it_now_beside_its_schedule(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("n", schedule="0 3 * * *")
            j.plane.target("job", "n", Target.RUNNING)  # titan start
            await j.plane.status("job", "n", "running")
            assert j.statuses("n") == [(1, "manual", "running")]
            j.plane.target("job", "n", Target.STOPPED)  # stops the run, not the schedule
            await j.run_status("n", 1, "stopped")
            assert "stop requested" in j.list("n")[0]["reason"]
            j.clock.now = j.clock.now.replace(hour=3, minute=0) + timedelta(days=1, seconds=1)
            await j.tick()
            assert j.statuses("n")[-1][1:] == ("schedule", "running")

    asyncio.run(scenario())


def test_a_job_whose_start_the_control_plane_did_not_see_through_runs_once(
    tmp_path: Path,
) -> None:
    """kill -9 after a job's process began but before its start was recorded: on restart
    it is adopted, whether it still runs or ended meanwhile; its program runs once and its
    run ends once, with its exit code."""

    async def scenario() -> None:
        machine = FakeMachine()
        async with jobs(tmp_path, backend=FakeBackend(machine=machine)) as j:
            j.apply("ends")
            j.apply("goes-on")
            await j.plane.status("job", "ends", "running")
            await j.plane.status("job", "goes-on", "running")
            ids = {name: j.plane.get("job", name)["id"] for name in ("ends", "goes-on")}
        with session_factory(make_engine(f"sqlite:///{tmp_path / 'titan.db'}")).begin() as s:
            s.execute(update(Process).values(state=Phase.STARTING))  # as the kill left them
        ended = [p for p in machine.processes.values() if p.spec.resource_id == ids["ends"]]
        ended[0].end(7)  # "ends" ended while the control plane was away
        async with jobs(tmp_path, backend=FakeBackend(machine=machine)) as j:
            await j.run_status("ends", 1, "failed")
            assert j.list("ends")[0]["exit_code"] == 7
            await j.plane.until(lambda: j.plane.reconciler.seen(ids["goes-on"]))
            assert j.plane.backend.starts == []  # neither started again
            j.plane.backend.machine.processes[j.plane.backend.pid_of("job", "goes-on")].end(0)
            await j.run_status("goes-on", 1, "succeeded")
            await asyncio.sleep(0.5)
            assert j.plane.backend.starts == []
            assert j.statuses("ends") == [(1, "manual", "failed")]
            assert j.statuses("goes-on") == [(1, "manual", "succeeded")]

    asyncio.run(scenario())


def test_allow_runs_side_by_side_each_with_its_own_process_exit_code_logs_and_outputs(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("a", schedule="* * * * *", concurrency_policy="Allow", max_concurrent_runs=2)
            j.clock.to_next_minute()
            await j.tick()
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1"])
            j.clock.to_next_minute()
            await j.tick()  # run 1 goes on: run 2 starts beside it
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1", "job-2"])
            assert j.statuses("a") == [(1, "schedule", "running"), (2, "schedule", "running")]
            outputs = {s.name: s.output_dir for s in j.plane.backend.specs.values()}
            assert outputs["job-1"] and outputs["job-1"].endswith("/job/a/runs/1")
            assert outputs["job-2"] and outputs["job-2"].endswith("/job/a/runs/2")
            j.clock.to_next_minute()
            await j.tick()  # two go on: the bound
            runs = j.list("a")
            assert j.statuses("a")[2] == (3, "schedule", "skipped")
            assert "runs 1, 2 were still running: at most 2 at once" in runs[2]["reason"]
            with pytest.raises(Conflict, match="runs 1, 2 are still running: at most 2"):
                j.runs.run_now(j.plane.admin, "a", None)

            j.plane.backend.exit("job-2", 3)  # the later one ends first
            await j.run_status("a", 2, "failed")
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1"])
            assert j.list("a")[1]["exit_code"] == 3
            assert j.plane.get("job", "a")["status"] == "running"  # run 1 goes on
            logs = await j.plane.service.logs(j.plane.admin, "job", "a", None, run=2)
            assert "log of job-2" in logs["processes"]["job"]["text"]
            logs = await j.plane.service.logs(j.plane.admin, "job", "a", None, run=1)
            assert "log of job-1" in logs["processes"]["job"]["text"]
            manual = j.runs.run_now(j.plane.admin, "a", None)  # room again: a manual run
            assert manual["number"] == 4
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1", "job-4"])

            j.plane.backend.exit("job-1", 0)
            await j.run_status("a", 1, "succeeded")
            assert j.plane.get("job", "a")["status"] == "running"
            j.plane.backend.exit("job-4", 0)
            await j.run_status("a", 4, "succeeded")
            await j.plane.status("job", "a", "succeeded")  # the last run ended: done
            assert [r["exit_code"] for r in j.list("a")] == [0, 3, None, 0]
            assert sorted(j.plane.backend.starts) == ["job-1", "job-2", "job-4"]

    asyncio.run(scenario())


def test_allow_times_out_and_retries_each_run_on_its_own_and_a_stop_ends_them_all(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path) as j:
            j.apply("b", concurrency_policy="Allow", timeout="30s", retries=1, retry_backoff="5s")
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1"])
            started = datetime.fromisoformat(j.list("b")[0]["started_at"])
            j.runs.run_now(j.plane.admin, "b", None)
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1", "job-2"])
            with session_factory(make_engine(f"sqlite:///{tmp_path / 'titan.db'}")).begin() as s:
                later = started + timedelta(seconds=20)  # run 2 began 20s after run 1
                s.execute(update(JobRun).where(JobRun.number == 2).values(started_at=later))
            j.clock.now = started + timedelta(seconds=31)
            await j.tick()  # run 1 is past its timeout, run 2 is not; run 1 is retried
            await j.run_status("b", 1, "timed_out")
            await j.plane.until(lambda: j.plane.backend.running() == ["job-2", "job-3"])
            assert j.statuses("b")[1:] == [(2, "manual", "running"), (3, "retry", "running")]
            j.plane.backend.exit("job-2", 1)
            await j.run_status("b", 2, "failed")
            assert j.plane.get("job", "b")["status"] == "running"  # run 3 goes on
            j.clock.now = datetime.fromisoformat(j.list("b")[1]["finished_at"])
            j.clock.now += timedelta(seconds=6)
            await j.tick()  # run 2 is retried beside run 3
            await j.plane.until(lambda: j.plane.backend.running() == ["job-3", "job-4"])
            assert j.statuses("b")[3] == (4, "retry", "running")
            assert [r["attempt"] for r in j.list("b")] == [1, 1, 2, 2]
            await j.tick()
            assert len(j.list("b")) == 4  # each failure retried once, never twice

            j.plane.target("job", "b", Target.STOPPED)  # stops every run
            await j.run_status("b", 3, "stopped")
            await j.run_status("b", 4, "stopped")
            await j.plane.status("job", "b", "stopped")
            assert j.plane.backend.running() == []

    asyncio.run(scenario())


def test_allow_runs_side_by_side_are_each_adopted_after_a_restart(tmp_path: Path) -> None:
    """kill -9 of the control plane while two runs go on side by side: on restart each
    process is mapped back to its run (by its name, job-N): none starts again, each run
    ends once, with its own exit code."""

    async def scenario() -> None:
        machine = FakeMachine()
        async with jobs(tmp_path, backend=FakeBackend(machine=machine)) as j:
            j.apply("c", concurrency_policy="Allow")
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1"])
            j.runs.run_now(j.plane.admin, "c", None)
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1", "job-2"])
        with session_factory(make_engine(f"sqlite:///{tmp_path / 'titan.db'}")).begin() as s:
            s.execute(update(Process).values(state=Phase.STARTING))  # as a kill may leave them
        backend = FakeBackend(machine=machine)
        backend.machine.processes[backend.pid_of("job-1")].end(5)  # ended while away
        async with jobs(tmp_path, backend=backend) as j:
            await j.run_status("c", 1, "failed")
            assert j.list("c")[0]["exit_code"] == 5
            await j.plane.status("job", "c", "running")
            assert j.plane.backend.running() == ["job-2"]
            j.plane.backend.exit("job-2", 0)
            await j.run_status("c", 2, "succeeded")
            await j.plane.status("job", "c", "succeeded")
            await asyncio.sleep(0.3)
            assert j.plane.backend.starts == []  # neither started again
            assert j.statuses("c") == [(1, "manual", "failed"), (2, "manual", "succeeded")]

    asyncio.run(scenario())


def test_allow_skips_a_run_that_would_take_the_owner_past_its_quota(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with jobs(tmp_path, default_quota={"cpus": 3}) as j:
            spec = {"schedule": "* * * * *", "concurrency_policy": "Allow"}
            j.apply("q", resources={"cpu": 2, "memory": "1GiB"}, **spec)
            j.clock.to_next_minute()
            await j.tick()
            await j.plane.until(lambda: j.plane.backend.running() == ["job-1"])
            j.clock.to_next_minute()
            await j.tick()  # 2 CPUs more would make 4 of 3
            run = j.list("q")[1]
            assert (run["status"], run["started_at"]) == ("skipped", None)
            assert "would not fit beside the runs going on: waiting for quota" in run["reason"]
            with pytest.raises(Conflict, match="waiting for quota of 'admin'"):
                j.runs.run_now(j.plane.admin, "q", None)
            assert j.plane.backend.starts == ["job-1"]

    asyncio.run(scenario())
