"""A Saturn job's schedule fields as Titan's: ``schedule``, ``concurrency_policy``,
``retries`` (``backoff_limit`` in the 2022 schema).

Saturn runs jobs as Kubernetes CronJobs and Jobs (its recipe schema says "a Kubernetes
CRON schedule"; ``backoff_limit`` is "the number of retries before considering a Job as
failed"), so each field has a Titan field of the same meaning:

- ``schedule``: 5-field cron, kept; the Kubernetes shorthands (``@daily`` ...) become
  their 5 fields. Saturn's recipes give no time zone, so Titan reads it in UTC, its
  default (add ``spec.timezone`` if the times were meant in another zone).
- ``concurrency_policy``: ``Allow``, ``Forbid`` and ``Replace`` kept (Titan's ``Allow``
  runs at most ``max_concurrent_runs``, 5 unless the recipe says, at once).
- ``retries`` / ``backoff_limit``: ``spec.retries``; Titan waits 10s before the first
  retry, doubling, as Kubernetes backs off (Kubernetes stops doubling at 6 minutes,
  Titan at 1 hour).

Saturn has no job timeout or time zone field, so none is read here. Where Saturn's 2022
schema has a default that differs from Titan's (``backoff_limit`` 3, ``concurrency_policy``
Allow) and the recipe leaves the field out, the report says so beside the command or the
schedule: nothing changes silently.
"""

from __future__ import annotations

from service.json_values import quoted
from service.recipes.importers.draft import Draft
from service.recipes.importers.saturn_document import SaturnDocument, SaturnField

# What each policy does with a run due while one still runs, in Titan as in Kubernetes.
WHEN_BUSY = {
    "Allow": "started alongside it (at most max_concurrent_runs, 5 by default, at once)",
    "Forbid": "skipped",
    "Replace": "started, stopping the running one",
}
# Kubernetes' cron shorthands (robfig/cron, which its CronJob controller uses), as 5 fields.
SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
SAME_TIMES = (
    "Saturn's recipes give no time zone: Titan reads the times in UTC, its default "
    "(add spec.timezone if they were meant in another zone)"
)


def _only_jobs(draft: Draft, item: SaturnField, what: str) -> bool:
    """True if ``draft`` is a job; otherwise ``item`` is refused (only a job has ``what``)."""
    if draft.kind == "job":
        return True
    draft.refuse(item.path, f"only a Titan job has {what}", item.value)
    return False


def schedule(draft: Draft, item: SaturnField, document: SaturnDocument) -> None:
    """Saturn's ``schedule`` as ``spec.schedule``, checked by Titan's own validation."""
    if not _only_jobs(draft, item, "a schedule"):
        return
    value = item.value
    if not isinstance(value, str):
        draft.refuse(item.path, "a schedule is a cron expression, as text", value)
        return
    cron = SHORTHANDS.get(value.strip().lower(), value)
    problem = draft.titan_problem({"schedule": cron})
    if problem is not None:
        draft.refuse(item.path, problem, value)
        return
    why = SAME_TIMES
    if document.value("concurrency_policy") is None:
        why += (
            "; with no concurrency_policy Saturn let runs overlap (Allow), Titan skips a "
            "run due while one still runs (Forbid) unless concurrency_policy is 'Allow'"
        )
    if cron == value:
        draft.keep(item.path, ("spec", "schedule"), cron, f"the same 5-field cron; {why}")
    else:
        draft.translate(
            item.path, ("spec", "schedule"), cron, f"{quoted(value)} written as 5 fields; {why}"
        )


def concurrency_policy(draft: Draft, item: SaturnField) -> None:
    """Saturn's ``concurrency_policy``: kept, each meaning the same in Titan."""
    if not _only_jobs(draft, item, "a concurrency policy"):
        return
    value = item.value
    if isinstance(value, str) and value in WHEN_BUSY:
        draft.keep(
            item.path,
            ("spec", "concurrency_policy"),
            value,
            f"the same in Titan: a run due while one still runs is {WHEN_BUSY[value]}",
        )
    else:
        draft.refuse(item.path, f"not one of Saturn's policies ({', '.join(WHEN_BUSY)})", value)


def retries(draft: Draft, item: SaturnField) -> None:
    """Saturn's ``retries`` or ``backoff_limit`` as ``spec.retries``."""
    if not _only_jobs(draft, item, "retries"):
        return
    value = item.value
    if type(value) is not int:  # not True, not 2.0, not "2"
        draft.refuse(item.path, "retries are a whole number", value)
        return
    if "retries" in draft.recipe["spec"]:
        draft.refuse(item.path, "retries are given twice (retries and backoff_limit)", value)
        return
    problem = draft.titan_problem({"retries": value})
    if problem is not None:
        draft.refuse(item.path, problem, value)
        return
    backoff = (
        "a failed, timed-out or lost run is retried after 10s, then 20s, 40s ... as "
        "Kubernetes backs off (Titan stops doubling at 1h, Kubernetes at 6 minutes; set "
        "spec.retry_backoff to change the first wait)"
    )
    if item.name == "retries":
        draft.keep(item.path, ("spec", "retries"), value, f"the same in Titan: {backoff}")
    else:
        draft.translate(
            item.path,
            ("spec", "retries"),
            value,
            f"Kubernetes' backoff limit is its number of retries: {backoff}",
        )


def unsaid_retries(document: SaturnDocument) -> str:
    """What the command's report row adds for a 2022 job that leaves ``backoff_limit``
    out (Saturn's schema retried such a job 3 times; Titan retries none); "" otherwise."""
    section = next((f for f in document.fields if f.name == "type"), None)
    flat = section is not None and section.path == "job"  # the 2022 schema's job section
    if not flat or document.value("backoff_limit") is not None:
        return ""
    return (
        "; with no backoff_limit Saturn's 2022 schema retried a failed run 3 times, Titan "
        "retries none (add spec.retries to retry)"
    )
