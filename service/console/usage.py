"""The usage page: GPU-hours and CPU-hours per owner and day for a date range, and the
same report as a CSV download."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.api.deps import TitanDep
from service.console.pages import HEADERS, render
from service.console.session import SignedIn
from service.core.identity.access import Principal
from service.database.models import utcnow
from service.errors import InvalidInput
from service.services import Titan

router = APIRouter(include_in_schema=False)
DAYS_SHOWN = 30  # the range when none is asked for
Day = Annotated[str, Query(alias="from", max_length=10)]
Until = Annotated[str, Query(alias="to", max_length=10)]
Owner = Annotated[str, Query(max_length=63)]
COLUMNS = ("owner", "day", "gpu_hours", "cpu_hours")


def _day(field: str, text: str) -> date | None:
    """The date in ``text`` (YYYY-MM-DD); None for an empty field."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: {text!r} is not a date such as 2025-01-31") from None


def report(titan: Titan, principal: Principal, start: str, end: str, owner: str) -> Any:
    """The usage report for the range asked for (default: the 30 days up to today)."""
    last = _day("to", end)
    first = _day("from", start)
    if first is None:
        first = (last or utcnow().date()) - timedelta(days=DAYS_SHOWN - 1)
    return titan.usage.report(principal, first, last, owner or None)


def totals(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each owner's hours over the whole range, by owner."""
    summed: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in days:
        summed[row["owner"]][0] += row["gpu_hours"]
        summed[row["owner"]][1] += row["cpu_hours"]
    return [
        {"owner": owner, "gpu_hours": round(gpu, 4), "cpu_hours": round(cpu, 4)}
        for owner, (gpu, cpu) in sorted(summed.items())
    ]


@router.get("/usage")
def usage_page(
    request: Request,
    titan: TitanDep,
    principal: SignedIn,
    start: Day = "",
    end: Until = "",
    owner: Owner = "",
) -> Response:
    """Usage per owner and day (the user's own and their groups'; admins everyone's)."""
    found = report(titan, principal, start, end, owner)
    return render(
        request,
        "usage.html",
        principal,
        "Usage",
        usage=found,
        totals=totals(found["days"]),
        owner=owner,
        query=request.url.query,
    )


@router.get("/usage.csv")
def usage_csv(
    titan: TitanDep, principal: SignedIn, start: Day = "", end: Until = "", owner: Owner = ""
) -> Response:
    """The same report as CSV: a header row, then one row per owner and day."""
    found = report(titan, principal, start, end, owner)
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(found["days"])
    name = f"titan-usage-{found['from']}-to-{found['to']}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )
