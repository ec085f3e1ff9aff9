"""The jobs page: every job the user may see, with its status, its processes' exit codes,
when it started and finished, and a button to run it again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.resources import listed, rows
from service.console.session import SignedIn
from service.core.control.state import Status

router = APIRouter(include_in_schema=False)


def run_of(job: dict[str, Any]) -> dict[str, Any]:
    """``job`` with its run: ``exit_codes`` (by process), ``started_at`` (its first
    process's start) and ``finished_at`` (its last process's end, once all ended)."""
    processes = job["processes"]
    ends = [p["finished_at"] for p in processes]
    job["exit_codes"] = [
        {"process": p["name"], "code": p["exit_code"]}
        for p in processes
        if p["exit_code"] is not None
    ]
    job["started_at"] = min((p["started_at"] for p in processes), default=None)
    job["finished_at"] = max(ends) if ends and None not in ends else None
    return job


@router.get("/jobs")
async def jobs_page(
    request: Request,
    titan: TitanDep,
    principal: SignedIn,
    status: str | None = None,
    owner: str | None = None,
) -> Response:
    """Every job the user may see (optionally of one status or owner)."""
    jobs = [
        run_of(job)
        for job in await rows(
            titan, principal, await listed(titan, principal, "job", owner), status
        )
    ]
    return render(
        request,
        "jobs.html",
        principal,
        "Jobs",
        jobs=jobs,
        filters={"status": status or "", "owner": owner or ""},
        statuses=[s.value for s in Status],
        query=request.url.query,
    )
