"""When a scheduled job is due, and which due times run after the control plane was away.

Pure functions of times: no store, no clock. Due times come from ``cronsim`` (the cron
evaluator Healthchecks.io uses) in the schedule's IANA time zone, so they follow the
wall clock there. The rule across DST changes (cronsim's, as Debian's cron):

- spring forward: a time in the skipped hour (02:30 on the night clocks jump from 02:00
  to 03:00) runs once, at the first moment after the gap (03:00 local);
- fall back: a fixed time in the repeated hour (02:30 on the night clocks go from 03:00
  back to 02:00) runs once, at its first pass; a schedule whose hour field is ``*``
  (``*/30 * * * *``) fires in both passes, since it counts real time.

Every due time is returned timezone-aware in UTC.

The missed-run policy (:func:`catch_up`): of the due times that passed while nothing
could start them, at most the latest runs, and only if it is at most
``starting_deadline`` old; every other one is recorded as missed. Never a burst.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

MOST_COUNTED = 10_000  # due times counted one by one after an outage; beyond: "at least"


@dataclass(frozen=True)
class Schedule:
    """A cron expression in a time zone.

    ``scale`` (tests only, ``TITAN_SCHEDULE_TIME_SCALE``) runs the schedule's clock that
    many times faster than real time: at 60 each real second is one minute of the
    schedule, so ``* * * * *`` is due every second.
    """

    cron: str
    timezone: str = "UTC"
    scale: float = 1.0

    def _to_cron(self, at: datetime) -> datetime:
        return datetime.fromtimestamp(at.timestamp() * self.scale, ZoneInfo(self.timezone))

    def _from_cron(self, at: datetime) -> datetime:
        return datetime.fromtimestamp(at.timestamp() / self.scale, UTC)

    def following(self, after: datetime) -> Iterator[datetime]:
        """Every due time strictly after ``after``, in order."""
        for due in CronSim(self.cron, self._to_cron(after)):
            yield self._from_cron(due)

    def next_after(self, after: datetime) -> datetime:
        """The first due time strictly after ``after``."""
        return next(self.following(after))

    def latest(self, at: datetime) -> datetime:
        """The last due time at or before ``at``."""
        # cronsim's reverse walk starts strictly before its start: start just after ``at``.
        start = self._to_cron(at) + timedelta(microseconds=1)
        return self._from_cron(next(CronSim(self.cron, start, reverse=True)))

    def between(self, after: datetime, until: datetime, most: int = MOST_COUNTED) -> list[datetime]:
        """The due times in ``(after, until]``, oldest first; at most ``most`` of the
        oldest (callers that need the newest ask :meth:`latest`)."""
        found: list[datetime] = []
        for due in self.following(after):
            if due > until or len(found) == most:
                break
            found.append(due)
        return found


@dataclass(frozen=True)
class CatchUp:
    """What to do with the due times in ``(last handled, now]``."""

    run: datetime | None  # the one due time to run now, if any
    missed: list[datetime]  # due times recorded as missed (never run), oldest first
    missed_more: bool = False  # more were missed than listed (a long outage)


def catch_up(schedule: Schedule, last: datetime, now: datetime, deadline: timedelta) -> CatchUp:
    """Which of the due times after ``last`` (the newest due time already handled, or
    when the schedule began) and at or before ``now`` runs, and which are missed.

    The latest runs if it is at most ``deadline`` old; all others are missed.
    """
    if schedule.next_after(last) > now:
        return CatchUp(None, [])
    newest = schedule.latest(now)
    older = schedule.between(last, newest)
    missed_more = len(older) == MOST_COUNTED and older[-1] < newest
    older = [due for due in older if due < newest]
    if now - newest <= deadline:
        return CatchUp(newest, older, missed_more)
    return CatchUp(None, [*older, newest], missed_more)
