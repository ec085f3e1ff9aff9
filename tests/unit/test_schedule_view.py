"""A job's run settings as the console shows them: defaults filled in, the next due time
in UTC from the schedule's own zone, none while suspended; lengths of time as read."""

from __future__ import annotations

from datetime import UTC, datetime

from service.console.formats import duration
from service.core.workloads.job_runs import schedule_view

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # the day before Berlin's clocks go forward


def job(**spec: object) -> dict[str, object]:
    return {"type": "job", "name": "j", "spec": {"command": "true", **spec}}


def test_the_next_due_time_follows_the_schedules_zone_across_dst() -> None:
    view = schedule_view(job(schedule="30 2 * * *", timezone="Europe/Berlin"), NOW)
    # 02:30 does not exist in Berlin on 29 March 2026: it runs at 03:00 CEST = 01:00 UTC.
    assert view["next_due"] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert (view["schedule"], view["timezone"], view["suspended"]) == (
        "30 2 * * *",
        "Europe/Berlin",
        False,
    )


def test_defaults_are_filled_in_and_suspended_has_no_next_run() -> None:
    view = schedule_view(job(schedule="0 * * * *", suspend=True, timeout="never"), NOW)
    assert view == {
        "schedule": "0 * * * *",
        "timezone": "UTC",
        "suspended": True,
        "next_due": None,
        "concurrency_policy": "Forbid",
        "retries": 0,
        "retry_backoff": "10s",
        "timeout": None,
        "starting_deadline": "1h",
    }
    plain = schedule_view(job(retries=3, retry_backoff="1m", timeout="2h"), NOW)
    assert (plain["schedule"], plain["next_due"]) == (None, None)
    assert (plain["retries"], plain["retry_backoff"], plain["timeout"]) == (3, "1m", "2h")


def test_lengths_of_time_read_as_people_write_them() -> None:
    assert [duration(s) for s in (0.42, 42, 185, 7620, 3 * 86400 + 4 * 3600)] == [
        "0.4s",
        "42s",
        "3m 05s",
        "2h 07m",
        "3d 4h",
    ]
