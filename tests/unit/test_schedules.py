"""Jobs on a schedule as pure decisions: due times (across DST changes), the missed-run
policy after an outage, concurrency policies and retry backoff.

The DST rule under test (see service/core/control/due_times.py): a daily time skipped by
spring-forward runs once, when the gap ends; a daily time in the repeated hour of
fall-back runs once, at its first pass; a schedule counting every N minutes fires in both
passes of the repeated hour (it counts real time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.core.control.due_times import MOST_COUNTED, Schedule, catch_up
from service.core.control.run_rules import (
    MOST_BACKOFF,
    RunStatus,
    Trigger,
    WhenBusy,
    awaiting_retry,
    retries_left,
    retry_delay,
    when_due,
    why_skipped,
)
from service.recipes.models import RecipeInvalid, parse_recipe


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_every_minute_is_due_at_each_whole_minute() -> None:
    every = Schedule("* * * * *")
    assert every.next_after(utc(2026, 12, 7, 10, 0, 30)) == utc(2026, 12, 7, 10, 1)
    assert every.next_after(utc(2026, 12, 7, 10, 1)) == utc(2026, 12, 7, 10, 2)  # strictly after
    assert every.between(utc(2026, 12, 7, 10, 0), utc(2026, 12, 7, 10, 3)) == [
        utc(2026, 12, 7, 10, 1),
        utc(2026, 12, 7, 10, 2),
        utc(2026, 12, 7, 10, 3),
    ]
    assert every.latest(utc(2026, 12, 7, 10, 3)) == utc(2026, 12, 7, 10, 3)  # at or before
    assert every.latest(utc(2026, 12, 7, 10, 3, 59)) == utc(2026, 12, 7, 10, 3)


def test_a_daily_time_skipped_by_spring_forward_runs_once_when_the_gap_ends() -> None:
    # Europe/Berlin, 2026-03-29: at 02:00 CET the clocks jump to 03:00 CEST.
    daily = Schedule("30 2 * * *", "Europe/Berlin")
    due = daily.between(utc(2026, 3, 27, 12), utc(2026, 3, 31, 12))
    assert due == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST, the gap's end
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
        utc(2026, 3, 31, 0, 30),
    ]


def test_a_daily_time_in_the_repeated_hour_of_fall_back_runs_once() -> None:
    # Europe/Berlin, 2026-10-25: at 03:00 CEST the clocks go back to 02:00 CET, so 02:30
    # happens twice; it runs at the first.
    daily = Schedule("30 2 * * *", "Europe/Berlin")
    due = daily.between(utc(2026, 10, 23, 12), utc(2026, 10, 26, 12))
    assert due == [
        utc(2026, 10, 24, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, first pass; not again at 01:30 UTC
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]


def test_new_york_moves_the_same_way() -> None:
    # America/New_York, 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
    spring = Schedule("30 2 * * *", "America/New_York")
    assert spring.between(utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)) == [
        utc(2026, 3, 8, 7, 0),  # 03:00 EDT: the gap's end
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]
    fall = Schedule("30 1 * * *", "America/New_York")  # 01:00-02:00 happens twice
    assert fall.between(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT, first pass only
        utc(2026, 11, 2, 6, 30),  # 01:30 EST
    ]


def test_a_schedule_counting_minutes_fires_in_both_passes_of_the_repeated_hour() -> None:
    half_hourly = Schedule("*/30 * * * *", "Europe/Berlin")
    due = half_hourly.between(utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 15))
    # Every 30 minutes of real time, also through the hour that happens twice.
    assert due == [utc(2026, 10, 25, 0, 0) + timedelta(minutes=30 * n) for n in range(5)]


def test_latest_in_the_repeated_hour_is_its_first_pass() -> None:
    daily = Schedule("30 2 * * *", "Europe/Berlin")
    second_pass_0245 = utc(2026, 10, 25, 1, 45)  # 02:45 CET
    assert daily.latest(second_pass_0245) == utc(2026, 10, 25, 0, 30)


def test_the_test_time_scale_makes_a_minute_last_a_second() -> None:
    fast = Schedule("* * * * *", scale=60)
    start = utc(2026, 12, 7, 10, 0, 0)
    assert fast.between(start, start + timedelta(seconds=3)) == [
        start + timedelta(seconds=n) for n in (1, 2, 3)
    ]
    every_other = Schedule("*/2 * * * *", scale=60)
    assert every_other.next_after(start) == start + timedelta(seconds=2)


# -- the missed-run policy ---------------------------------------------------------------

EVERY_MINUTE = Schedule("* * * * *")
LAST = utc(2026, 12, 7, 10, 0)


def test_nothing_due_runs_nothing() -> None:
    decided = catch_up(EVERY_MINUTE, LAST, LAST + timedelta(seconds=59), timedelta(hours=1))
    assert decided.run is None and decided.missed == []


def test_a_due_time_just_passed_runs() -> None:
    decided = catch_up(EVERY_MINUTE, LAST, utc(2026, 12, 7, 10, 1, 0, 500), timedelta(minutes=1))
    assert decided.run == utc(2026, 12, 7, 10, 1) and decided.missed == []


def test_after_an_outage_only_the_latest_runs_within_the_deadline() -> None:
    now = utc(2026, 12, 7, 10, 5, 20)
    decided = catch_up(EVERY_MINUTE, LAST, now, timedelta(minutes=1))
    assert decided.run == utc(2026, 12, 7, 10, 5)
    assert decided.missed == [utc(2026, 12, 7, 10, m) for m in (1, 2, 3, 4)]


def test_after_an_outage_past_the_deadline_nothing_runs() -> None:
    daily = Schedule("30 2 * * *", "Europe/Berlin")
    last = utc(2026, 12, 5, 1, 30)
    now = utc(2026, 12, 7, 3, 0)  # 04:00 Berlin: today's 02:30 is 90 minutes old
    decided = catch_up(daily, last, now, timedelta(hours=1))
    assert decided.run is None
    assert decided.missed == [utc(2026, 12, 6, 1, 30), utc(2026, 12, 7, 1, 30)]
    again = catch_up(daily, last, now, timedelta(hours=2))
    assert again.run == utc(2026, 12, 7, 1, 30) and again.missed == [utc(2026, 12, 6, 1, 30)]


def test_a_long_outage_is_never_a_burst_and_its_count_is_capped() -> None:
    now = LAST + timedelta(days=30, seconds=5)
    decided = catch_up(EVERY_MINUTE, LAST, now, timedelta(minutes=5))
    assert decided.run == LAST + timedelta(days=30)  # one run: the latest
    assert len(decided.missed) == MOST_COUNTED and decided.missed_more


# -- concurrency and retries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "running", "action"),
    [
        ("Forbid", 0, WhenBusy.START),
        ("Forbid", 1, WhenBusy.SKIP),
        ("Replace", 0, WhenBusy.START),
        ("Replace", 1, WhenBusy.REPLACE),
        ("Allow", 0, WhenBusy.START),
        ("Allow", 1, WhenBusy.START),  # alongside the one going on
        ("Allow", 2, WhenBusy.START),
        ("Allow", 3, WhenBusy.SKIP),  # the bound (max_concurrent_runs 3) is reached
    ],
)
def test_each_concurrency_policy(policy: str, running: int, action: WhenBusy) -> None:
    assert when_due(policy, running, most=3) == action


def test_allow_starts_alongside_up_to_its_default_bound_and_says_why_it_skips() -> None:
    assert when_due("Allow", 4) == WhenBusy.START
    assert when_due("Allow", 5) == WhenBusy.SKIP  # default max_concurrent_runs: 5
    assert why_skipped("Allow", [4, 6], most=2) == (
        "runs 4, 6 were still running: at most 2 at once "
        "(max_concurrent_runs, concurrency_policy Allow)"
    )
    assert why_skipped("Allow", [4, 6], most=2, now=True).startswith("runs 4, 6 are still")
    assert why_skipped("Forbid", [7], most=1) == (
        "run 7 was still running (concurrency_policy Forbid)"
    )
    assert why_skipped("Forbid", [7], now=True) == (
        "run 7 is still running and its concurrency_policy is Forbid"
    )


ENDED = datetime(2026, 12, 7, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    number: int
    trigger: str
    status: str
    attempt: int = 1
    finished_at: datetime | None = ENDED


def test_under_allow_each_failed_run_gets_its_own_retries() -> None:
    failed, running = RunStatus.FAILED, RunStatus.RUNNING
    one, two = Run(1, Trigger.SCHEDULE, failed), Run(2, Trigger.SCHEDULE, failed)
    assert awaiting_retry([one, two], retries=2) == [one, two]  # side by side, both failed
    retry = Run(3, Trigger.RETRY, running, attempt=2, finished_at=None)
    assert awaiting_retry([one, two, retry], retries=2) == [two]  # 3 answers 1
    retry_failed = Run(3, Trigger.RETRY, failed, attempt=2)
    assert awaiting_retry([one, two, retry_failed], retries=2) == [two, retry_failed]
    assert awaiting_retry([one, two, retry_failed], retries=1) == [two]  # its retries spent
    done = Run(4, Trigger.RETRY, RunStatus.SUCCEEDED, attempt=2)
    assert awaiting_retry([one, two, retry, done], retries=2) == []
    stopped = Run(5, Trigger.MANUAL, RunStatus.STOPPED)
    assert awaiting_retry([stopped, Run(6, Trigger.MANUAL, running, finished_at=None)], 3) == []


def test_retries_back_off_exponentially_up_to_an_hour() -> None:
    base = timedelta(seconds=10)
    assert [retry_delay(base, attempt).total_seconds() for attempt in (1, 2, 3, 4)] == [
        10,
        20,
        40,
        80,
    ]
    assert retry_delay(base, 30) == MOST_BACKOFF


def test_what_is_retried_and_how_often() -> None:
    assert retries_left(RunStatus.FAILED, attempt=1, retries=2)
    assert retries_left(RunStatus.TIMED_OUT, attempt=2, retries=2)
    assert retries_left(RunStatus.LOST, attempt=1, retries=1)
    assert not retries_left(RunStatus.FAILED, attempt=3, retries=2)  # 1 run + 2 retries done
    assert not retries_left(RunStatus.FAILED, attempt=1, retries=0)
    assert not retries_left(RunStatus.STOPPED, attempt=1, retries=5)  # by request, or replaced
    assert not retries_left(RunStatus.SUCCEEDED, attempt=1, retries=5)


# -- the recipe ------------------------------------------------------------------------------


def problems(**spec: Any) -> str:
    with pytest.raises(RecipeInvalid) as info:
        parse_recipe({"type": "job", "name": "j", "spec": {"command": "true", **spec}})
    return str(info.value)


def test_a_scheduled_job_recipe() -> None:
    recipe = parse_recipe(
        {
            "type": "job",
            "name": "nightly",
            "spec": {
                "command": "python train.py",
                "schedule": "30 2 * * *",
                "timezone": "Europe/Berlin",
                "concurrency_policy": "Replace",
                "starting_deadline": "2h",
                "retries": 3,
                "retry_backoff": "1m",
                "timeout": "3h",
            },
        }
    )
    assert recipe.spec.schedule == "30 2 * * *"  # type: ignore[union-attr]
    allowed = parse_recipe(
        {
            "type": "job",
            "name": "every-minute",
            "spec": {
                "command": "python step.py",
                "schedule": "* * * * *",
                "concurrency_policy": "Allow",
                "max_concurrent_runs": 3,
            },
        }
    )
    assert allowed.spec.max_concurrent_runs == 3  # type: ignore[union-attr]


def test_schedule_mistakes_are_named() -> None:
    assert "spec.schedule: must be a 5-field cron" in problems(schedule="* * * *")
    assert "spec.schedule: is not a valid cron expression" in problems(schedule="61 * * * *")
    assert "spec.timezone: 'Mars/Base' is not an IANA time zone" in problems(
        schedule="* * * * *", timezone="Mars/Base"
    )
    assert "spec.timezone: give it with a schedule" in problems(timezone="UTC")
    assert "spec.max_concurrent_runs: applies only with concurrency_policy 'Allow'" in (
        problems(max_concurrent_runs=2)
    )
    assert "spec.max_concurrent_runs" in problems(concurrency_policy="Allow", max_concurrent_runs=0)
    assert "spec.concurrency_policy: 'Allow' (runs side by side) is not supported for a job " in (
        problems(concurrency_policy="Allow", dask_cluster={"n_workers": 1})
    )
    assert "spec.starting_deadline: give a duration" in problems(starting_deadline="never")
    assert "spec.retries" in problems(retries=-1)
    assert "spec.timeout" in problems(timeout="5 minutes")
