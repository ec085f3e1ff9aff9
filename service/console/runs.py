"""A job's runs and schedule in the console: the schedule with its next due time, the run
history, each run's logs and outputs, "Run now" and suspend/resume.

The job's resource page shows the runs part (:func:`runs_part`, refreshed by the page);
each run's logs and outputs open as a panel beside it, or as a page of their own without
script (:func:`run_page`). Changes go through the same services as the API: "Run now"
is the API's ``POST .../runs`` (its concurrency policy answers), suspend and resume
apply the recipe with ``spec.suspend`` changed.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.formats import duration
from service.console.pages import answer_line, render
from service.console.resources import resource_path
from service.console.session import Changing, SignedIn
from service.core.identity.access import Principal
from service.core.workloads.job_runs import schedule_view
from service.errors import InvalidInput, NotFound, TitanError
from service.services import Titan

router = APIRouter(include_in_schema=False)
JOB = "/resources/job/{name}"
Owner = Annotated[str | None, Form()]
RUNS_CHANGED = "runs-changed"  # the event after which the page's runs part refreshes
SHOWN_RUNS = 50  # the newest runs on the page; `titan runs` lists every kept one
LOG_TAIL = 1000  # lines of a run's log shown
LOG_MOST = 32 * 1024  # characters of them, at most: escaped (up to 5 each), pages stay small
POLICIES = {
    "Allow": "a run due while one still runs starts beside it, up to max_concurrent_runs at once",
    "Forbid": "a run due while one still runs is skipped; Run now is refused",
    "Replace": "a run due while one still runs stops it and starts",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(start: str | None, end: str | None) -> float | None:
    if start is None:
        return None
    finish = datetime.fromisoformat(end) if end is not None else _now()
    return (finish - datetime.fromisoformat(start)).total_seconds()


def shown_run(run: dict[str, Any], job: str, owner: str) -> dict[str, Any]:
    """``run`` (as the API answers it) with what the console adds: ``duration`` (text;
    "so far" while it runs), ``began`` (whether it started a process, so has logs) and
    ``page`` (its logs and outputs)."""
    took = _seconds(run["started_at"], run["finished_at"])
    so_far = " so far" if run["finished_at"] is None and took is not None else ""
    return {
        **run,
        "duration": duration(took) + so_far if took is not None else "—",
        "began": run["started_at"] is not None,
        "page": f"/resources/job/{quote(job)}/runs/{run['number']}?owner={quote(owner)}",
    }


def _schedule(titan: Titan, recipe: dict[str, Any]) -> dict[str, Any]:
    facts = schedule_view(recipe, _now(), titan.settings.schedule_time_scale)
    facts["policy_means"] = POLICIES.get(facts["concurrency_policy"], "")
    return facts


def runs_context(
    titan: Titan, principal: Principal, job: dict[str, Any], recipe: dict[str, Any]
) -> dict[str, Any]:
    """What the runs part shows of ``job`` (a resource view) and its ``recipe``: the
    schedule facts and the newest runs."""
    name, whose = job["name"], job["owner"]
    runs = titan.runs.list(principal, name, whose, SHOWN_RUNS)
    return {
        "job": name,
        "job_owner": whose,
        "schedule": _schedule(titan, recipe),
        "runs": [shown_run(run, name, whose) for run in runs],
        "going": any(run["finished_at"] is None for run in runs),
        "most_shown": SHOWN_RUNS,
    }


def _job(titan: Titan, principal: Principal, name: str, owner: str | None) -> Any:
    """The job's view and recipe (NotFound, as for any resource, where the user may not
    see it)."""
    return titan.resources.details(principal, "job", name, owner, changes=1)


@router.get(JOB + "/runs")
def runs_part(
    request: Request, name: str, titan: TitanDep, principal: SignedIn, owner: str | None = None
) -> Response:
    """The job's schedule and run history alone, for the page's refresh."""
    details = _job(titan, principal, name, owner)
    context = runs_context(titan, principal, details.view, details.recipe)
    return render(request, "job_runs.html", principal, f"job/{name} runs", **context)


async def _logs(
    titan: Titan, principal: Principal, name: str, owner: str, number: int
) -> tuple[str, str]:
    """The run's log text (its last lines, at most LOG_MOST characters) and a note on
    what is shown or why there is none."""
    try:
        answer = await titan.resources.logs(
            principal, "job", name, owner, tail=LOG_TAIL, run=number
        )
    except NotFound as exc:
        return "", exc.message
    text = "".join(chunk.get("text") or "" for chunk in answer["processes"].values())
    if len(text) > LOG_MOST:
        return text[-LOG_MOST:], f"The last {LOG_MOST // 1024} KiB of its output."
    if not text:
        return "", "It has written no output (yet)."
    return text, f"The last {LOG_TAIL} lines of its output at most."


@router.get(JOB + "/runs/{number}")
async def run_page(
    request: Request,
    name: str,
    number: int,
    titan: TitanDep,
    principal: SignedIn,
    owner: str | None = None,
) -> Response:
    """One run: its facts, logs and outputs; only the panel for an htmx request."""
    if not 1 <= number < 2**31:
        raise NotFound(f"job {name!r} has no run {number}")
    run = titan.runs.get(principal, name, owner, number)
    whose = _job(titan, principal, name, owner).view["owner"]
    logs, logs_note = await _logs(titan, principal, name, whose, number)
    outputs: dict[str, Any] = {"files": [], "skipped": [], "truncated": False}
    if run["started_at"] is not None:
        with suppress(NotFound):  # a run that never started a process has no folder
            outputs = titan.resources.outputs(principal, "job", name, whose, number)
    base = f"/api/v1/resources/job/{quote(name)}/outputs/"
    for item in outputs["files"]:
        item["link"] = f"{base}{quote(item['path'])}?owner={quote(whose)}&run={number}"
    template = "run_panel.html" if request.headers.get("hx-request") else "run.html"
    return render(
        request,
        template,
        principal,
        f"job/{name} run {number}",
        run=shown_run(run, name, whose),
        job=name,
        job_owner=whose,
        job_page=resource_path({"type": "job", "name": name, "owner": whose}, principal),
        logs=logs,
        logs_note=logs_note,
        outputs=outputs,
    )


@router.post(JOB + "/run-now")
def run_now(
    request: Request, name: str, titan: TitanDep, principal: Changing, owner: Owner = None
) -> Response:
    """Begin a run now, as ``POST /api/v1/resources/job/NAME/runs``. From the page's
    script: a line saying which run began, or why none did (the concurrency policy's
    answer); from a plain form: back to the job's page, or the refusal's page."""
    try:
        run = titan.runs.run_now(principal, name, owner or None)
    except TitanError as exc:
        if not request.headers.get("hx-request"):
            raise
        return answer_line("run-now-answer", f"Not started: {exc.message}", "alert")
    if request.headers.get("hx-request"):
        answer = answer_line("run-now-answer", f"Run {run['number']} begun.", "status")
        answer.headers["HX-Trigger"] = RUNS_CHANGED  # the runs part shows it at once
        return answer
    job = {"type": "job", "name": name, "owner": owner or principal.user_name}
    return RedirectResponse(resource_path(job, principal) + "#job-runs", 303)


@router.post(JOB + "/suspend")
def suspend(
    name: str,
    titan: TitanDep,
    principal: Changing,
    suspended: Annotated[bool, Form()],
    owner: Owner = None,
) -> Response:
    """Suspend the job's schedule (true) or resume it (false): its recipe applied with
    ``spec.suspend`` changed (a run going on goes on)."""
    recipe, generation = titan.resources.recipe(principal, "job", name, owner or None)
    spec = dict(recipe.get("spec") or {})
    if not spec.get("schedule"):
        raise InvalidInput("suspended: this job has no schedule to suspend; it runs when asked")
    if suspended:
        spec["suspend"] = True
    else:
        spec.pop("suspend", None)
    applied = titan.resources.apply(principal, {**recipe, "spec": spec}, generation)
    return RedirectResponse(resource_path(applied["resource"], principal) + "#job-runs", 303)
