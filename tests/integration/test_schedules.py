"""Jobs on a schedule against a real server and real processes (local backend).

Schedules run 60 times faster than real time here (TITAN_SCHEDULE_TIME_SCALE=60: a
schedule's minute lasts one second), so ``*/2 * * * *`` is due every two seconds.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from service.client import ConflictError, Hub
from tests.integration.conftest import ServerFactory
from tests.integration.test_cli import titan
from tests.integration.test_restart_safety import running_server_process
from tests.waiting import wait_for

FAST = {"schedule_time_scale": 60, "schedule_tick_seconds": 0.2}
ENDED = {"succeeded", "failed", "timed_out", "lost", "stopped", "skipped", "missed"}


def job(name: str, command: str, **spec: Any) -> dict[str, Any]:
    return {"type": "job", "name": name, "spec": {"command": command, **spec}}


def runs(hub: Hub, name: str) -> list[dict[str, Any]]:
    """The job's runs, oldest first."""
    return list(reversed(hub.runs(f"job/{name}")))


def at(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text).timestamp()


def suspend(hub: Hub, recipe: dict[str, Any]) -> None:
    """No further scheduled run (the fixture then deletes the job)."""
    hub.apply({**recipe, "spec": {**recipe["spec"], "suspend": True}})


def test_a_schedule_runs_each_due_time_with_its_own_logs_and_outputs(
    start_server: ServerFactory,
) -> None:
    server = start_server(**FAST)
    hub = server.hub()
    command = 'echo "run $TITAN_JOB_RUN"; echo "$TITAN_JOB_RUN" > "$TITAN_OUTPUT_DIR/number.txt"'
    recipe = job("tick", command, schedule="*/2 * * * *")
    hub.apply(recipe)
    assert hub.get("job/tick")["status"] == "stopped"  # it waits for its schedule

    def two_ended() -> list[dict[str, Any]]:
        done = [r for r in runs(hub, "tick") if r["status"] in ENDED]
        return done if len(done) >= 2 else []

    first, second = wait_for(two_ended, timeout=90)[:2]
    suspend(hub, recipe)
    for run in (first, second):
        assert (run["trigger"], run["status"], run["exit_code"]) == ("schedule", "succeeded", 0)
        assert at(run["scheduled_for"]) % 2 == 0  # its due time: an even second
        assert at(run["started_at"]) >= at(run["scheduled_for"])  # never early
    assert at(second["scheduled_for"]) - at(first["scheduled_for"]) == 2  # no due time lost

    # Each run's logs and outputs stay its own after the next run began.
    for run in (first, second):
        number = run["number"]
        text = hub.logs("job/tick", job_run=number)["processes"]["job"]["text"]
        assert [line for line in text.splitlines() if line.startswith("run ")] == [f"run {number}"]
        listed = hub.outputs("job/tick", number)
        assert [f["path"] for f in listed["files"]] == ["number.txt"] and listed["run"] == number
    out = server.settings.data_dir.parent / "number.txt"
    hub.download_output("job/tick", "number.txt", out, first["number"])
    assert out.read_text() == f"{first['number']}\n"

    samples = server.request("GET", first["telemetry"])  # its metrics in the monitoring store
    assert samples.status_code == 200 and "series" in samples.json(), samples.text
    shown = titan(server, "runs", "job/tick")
    assert shown.returncode == 0 and "schedule" in shown.stdout and "succeeded" in shown.stdout
    logged = titan(server, "logs", "job/tick", "--run", str(first["number"]))
    assert logged.returncode == 0 and f"run {first['number']}" in logged.stdout, logged

    # Suspended: no further run.
    count = len(runs(hub, "tick"))
    time.sleep(4)
    assert len(runs(hub, "tick")) == count


def test_forbid_skips_due_times_while_a_run_goes_on(start_server: ServerFactory) -> None:
    server = start_server(**FAST)
    hub = server.hub()
    recipe = job("forbid", "sleep 3", schedule="* * * * *")  # due every second
    hub.apply(recipe)
    wait_for(lambda: hub.get("job/forbid")["status"] == "running", timeout=60)
    with pytest.raises(ConflictError, match="concurrency_policy is Forbid"):
        hub.run("job/forbid")  # a manual run is refused too

    def second_run_began() -> list[dict[str, Any]]:
        found = runs(hub, "forbid")
        began = [r for r in found if r["started_at"] is not None]
        return found if len(began) >= 2 else []

    found = wait_for(second_run_began, timeout=90)
    suspend(hub, recipe)
    first, second = [r for r in found if r["started_at"] is not None][:2]
    before = at(second["scheduled_for"])
    skipped = [r for r in found if r["status"] == "skipped" and at(r["scheduled_for"]) < before]
    # Every due time while run 1 went on was skipped, naming it; none started beside it.
    assert first["status"] == "succeeded" and len(skipped) >= 2
    assert all(
        "run 1 was still running (concurrency_policy Forbid)" in r["reason"] for r in skipped
    )
    assert all(at(first["started_at"]) < at(r["scheduled_for"]) for r in skipped)
    assert at(second["started_at"]) >= at(first["finished_at"])


def test_replace_stops_the_running_run_for_the_due_one(start_server: ServerFactory) -> None:
    server = start_server(**FAST)
    hub = server.hub()
    recipe = job("replace", "echo started $TITAN_JOB_RUN; sleep 60", schedule="*/3 * * * *")
    recipe["spec"]["concurrency_policy"] = "Replace"
    hub.apply(recipe)

    def replaced() -> list[dict[str, Any]]:
        found = runs(hub, "replace")
        return found if len(found) >= 2 and found[1]["status"] == "running" else []

    first, second = wait_for(replaced, timeout=90)[:2]
    suspend(hub, recipe)
    assert first["status"] == "stopped" and "replaced by a scheduled run" in first["reason"]
    assert at(second["scheduled_for"]) - at(first["scheduled_for"]) == 3

    def only_the_new_one_runs() -> bool:
        processes = hub.get("job/replace")["processes"]
        text = hub.logs("job/replace")["processes"].get("job", {}).get("text", "")
        running = [p for p in processes if p["state"] == "running"]
        return len(running) == 1 and f"started {second['number']}" in text

    wait_for(only_the_new_one_runs, timeout=60)
    old = hub.logs("job/replace", job_run=first["number"])["processes"]["job"]["text"]
    assert f"started {first['number']}" in old


def test_allow_runs_overlapping_runs_side_by_side_each_with_its_own_logs_and_outputs(
    start_server: ServerFactory,
) -> None:
    server = start_server(**FAST)
    hub = server.hub()
    # Due every 2 seconds, each run takes 5: runs overlap; at most 2 at once.
    command = (
        'echo "start $TITAN_JOB_RUN"; echo "$TITAN_JOB_RUN" > "$TITAN_OUTPUT_DIR/number.txt"; '
        'sleep 5; echo "done $TITAN_JOB_RUN"'
    )
    recipe = job("allow", command, schedule="*/2 * * * *", concurrency_policy="Allow")
    recipe["spec"]["max_concurrent_runs"] = 2
    hub.apply(recipe)

    def two_running() -> list[dict[str, Any]]:
        processes = hub.get("job/allow")["processes"]
        running = [p for p in processes if p["state"] == "running"]
        return running if len(running) == 2 else []

    side_by_side = wait_for(two_running, timeout=90)  # two runs' processes at once
    assert sorted(p["name"] for p in side_by_side)[0].startswith("job-")

    def two_began_and_ended() -> list[dict[str, Any]]:
        began = [r for r in runs(hub, "allow") if r["started_at"] is not None]
        return began[:2] if len(began) >= 2 and began[1]["status"] in ENDED else []

    first, second = wait_for(two_began_and_ended, timeout=90)
    skipped = wait_for(
        lambda: [r for r in runs(hub, "allow") if r["status"] == "skipped"], timeout=60
    )
    suspend(hub, recipe)
    assert at(second["started_at"]) < at(first["finished_at"])  # they overlapped
    for run in (first, second):
        assert (run["trigger"], run["status"], run["exit_code"]) == ("schedule", "succeeded", 0)
        number = run["number"]
        text = hub.logs("job/allow", job_run=number)["processes"]["job"]["text"]
        assert [line for line in text.splitlines() if line.split()[0] in ("start", "done")] == [
            f"start {number}",
            f"done {number}",
        ], text
        listed = hub.outputs("job/allow", number)
        assert [f["path"] for f in listed["files"]] == ["number.txt"] and listed["run"] == number
        out = server.settings.data_dir.parent / f"number-{number}.txt"
        hub.download_output("job/allow", "number.txt", out, number)
        assert out.read_text() == f"{number}\n"
    # A due time while two went on was skipped, saying why.
    assert "at most 2 at once (max_concurrent_runs" in skipped[0]["reason"]
    shown = titan(server, "runs", "job/allow")
    assert shown.returncode == 0 and "skipped" in shown.stdout and "succeeded" in shown.stdout


def test_a_failing_run_is_retried_and_a_long_one_times_out(start_server: ServerFactory) -> None:
    server = start_server(**FAST)
    hub = server.hub()
    hub.apply(job("flaky", "echo try $TITAN_JOB_RUN; exit 3", retries=2, retry_backoff="1s"))
    hub.apply(job("slow", "sleep 60", timeout="3s"))

    def three_failed() -> list[dict[str, Any]]:
        found = runs(hub, "flaky")
        return found if len(found) == 3 and found[-1]["status"] == "failed" else []

    tries = wait_for(three_failed, timeout=90)
    assert [(r["trigger"], r["attempt"], r["exit_code"]) for r in tries] == [
        ("manual", 1, 3),
        ("retry", 2, 3),
        ("retry", 3, 3),
    ]
    # Backoff: 1s before the first retry, 2s before the second.
    assert at(tries[1]["started_at"]) - at(tries[0]["finished_at"]) >= 1
    assert at(tries[2]["started_at"]) - at(tries[1]["finished_at"]) >= 2

    def timed_out() -> dict[str, Any] | None:
        run = runs(hub, "slow")[0]
        return run if run["status"] == "timed_out" else None

    run = wait_for(timed_out, timeout=60)
    assert 3 <= at(run["finished_at"]) - at(run["started_at"]) < 10
    wait_for(lambda: hub.get("job/slow")["status"] == "stopped", timeout=30)
    assert all(p["state"] != "running" for p in hub.get("job/slow")["processes"])
    time.sleep(2)
    assert len(runs(hub, "flaky")) == 3 and len(runs(hub, "slow")) == 1  # nothing more


@pytest.mark.slow
def test_kill_9_during_runs_then_a_restart_neither_loses_nor_repeats_a_run(
    tmp_path: Path,
) -> None:
    env = {"TITAN_SCHEDULE_TIME_SCALE": "60", "TITAN_SCHEDULE_TICK_SECONDS": "0.2"}
    with running_server_process(tmp_path / "data", env) as server:
        hub = server.start()
        # Due every 10 seconds: A runs the latest missed due time (deadline 1h), B only
        # one at most 1s old; C is a manual run still going when the server is back.
        every_10s = "*/10 * * * *"
        command = "echo start $TITAN_JOB_RUN; sleep 4; echo done $TITAN_JOB_RUN"
        hub.apply(job("a", command, schedule=every_10s))
        hub.apply(job("b", "true", schedule=every_10s, starting_deadline="1s"))
        hub.apply(job("c", "echo c $TITAN_JOB_RUN; sleep 60; echo c done"))

        def a_runs() -> dict[str, Any] | None:
            found = runs(hub, "a")
            resource = hub.get("job/a")
            started = any(p["state"] == "running" for p in resource["processes"])
            return found[0] if found and started else None

        first = wait_for(a_runs, timeout=60)
        wait_for(lambda: hub.get("job/c")["status"] == "running", timeout=30)
        c_run = runs(hub, "c")[0]
        server.kill()  # kill -9 while A's run 1 and C's run 1 go on
        killed_at = time.time()
        # Back 3s after a due time, at least one due time later: B's latest is too old.
        while not (time.time() - killed_at >= 11 and time.time() % 10 >= 3):
            time.sleep(0.1)
        hub = server.start()
        back_at = time.time()

        # A's run 1 ended while the control plane was away: recorded with its exit code,
        # run once.
        wait_for(lambda: runs(hub, "a")[0]["status"] == "succeeded", timeout=60)
        text = hub.logs("job/a", job_run=first["number"])["processes"]["job"]["text"]
        lines = text.splitlines()
        assert lines.count("start 1") == 1 and lines.count("done 1") == 1, text

        # Of A's due times while away, only the latest ran, once; the others are missed.
        def a_caught_up() -> list[dict[str, Any]]:
            found = [r for r in runs(hub, "a") if r["number"] > 1]
            return found if any(r["started_at"] for r in found) else []

        later = wait_for(a_caught_up, timeout=60)
        away = [r for r in later if killed_at < at(r["scheduled_for"]) <= back_at]
        ran = [r for r in away if r["started_at"] is not None]
        assert len(ran) == 1, away
        # (A due time that came while the server was starting, after the catch-up, is
        # skipped: the run caught up still goes on.)
        caught_up = [r for r in away if r["status"] != "skipped"]
        assert ran[0]["scheduled_for"] == max(r["scheduled_for"] for r in caught_up)
        assert all(r["status"] == "missed" for r in caught_up if r is not ran[0])
        dues = [r["scheduled_for"] for r in runs(hub, "a") if r["scheduled_for"]]
        assert len(dues) == len(set(dues))  # no due time twice

        # B: a due time older than its 1s deadline never ran late.
        b_runs = runs(hub, "b")
        assert any(r["status"] == "missed" for r in b_runs)
        for run in b_runs:
            if run["started_at"] is not None:
                assert at(run["started_at"]) - at(run["scheduled_for"]) <= 2, run

        # C's run went on through the restart (the same process, adopted) and ends once.
        assert runs(hub, "c")[0]["status"] == "running"
        wait_for(lambda: runs(hub, "c")[0]["status"] == "succeeded", timeout=90)
        c_runs = runs(hub, "c")
        assert len(c_runs) == 1 and c_runs[0]["number"] == c_run["number"]
        text = hub.logs("job/c", job_run=1)["processes"]["job"]["text"]
        lines = text.splitlines()
        assert lines.count("c 1") == 1 and lines.count("c done") == 1, text
        for name in ("a", "b"):
            suspend(hub, job(name, "true", schedule=every_10s))


@pytest.mark.slow
def test_kill_9_during_runs_side_by_side_then_a_restart_keeps_each_run_right(
    tmp_path: Path,
) -> None:
    env = {"TITAN_SCHEDULE_TIME_SCALE": "60", "TITAN_SCHEDULE_TICK_SECONDS": "0.2"}
    with running_server_process(tmp_path / "data", env) as server:
        hub = server.start()
        # Run 1 takes 12s, run 2 4s: run 2 ends while the control plane is away, run 1
        # goes on through the restart.
        command = (
            "echo c $TITAN_JOB_RUN; sleep $((20 - 8 * TITAN_JOB_RUN)); "
            "echo c done $TITAN_JOB_RUN; exit $((TITAN_JOB_RUN + 1))"
        )
        hub.apply(job("c", command, concurrency_policy="Allow"))
        wait_for(lambda: runs(hub, "c") and runs(hub, "c")[0]["status"] == "running", 30)
        hub.run("job/c")

        def two_running() -> bool:
            processes = hub.get("job/c")["processes"]
            return sum(p["state"] == "running" for p in processes) == 2

        wait_for(two_running, timeout=30)
        server.kill()  # kill -9 while both runs go on
        time.sleep(5)
        hub = server.start()

        def both_ended() -> list[dict[str, Any]]:
            found = runs(hub, "c")
            return found if all(r["status"] in ENDED for r in found) else []

        found = wait_for(both_ended, timeout=90)
        assert [(r["number"], r["status"], r["exit_code"]) for r in found] == [
            (1, "failed", 2),
            (2, "failed", 3),
        ]
        for number in (1, 2):  # each ran once, its whole log its own
            text = hub.logs("job/c", job_run=number)["processes"]["job"]["text"]
            lines = text.splitlines()
            assert lines.count(f"c {number}") == 1, text
            assert lines.count(f"c done {number}") == 1, text
            assert all(line.endswith(str(number)) for line in lines if line.startswith("c ")), text
        wait_for(lambda: hub.get("job/c")["status"] == "failed", timeout=30)
        time.sleep(1)
        assert len(runs(hub, "c")) == 2  # none repeated, none lost
