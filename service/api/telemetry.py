"""Telemetry: samples in, series and newest readings out, and ``/metrics`` for Prometheus."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from service.api.answers.monitoring import Accepted, CurrentAnswer, MetricName, TelemetryAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.core.identity.access import require_user
from service.monitoring.prometheus import (
    CONTENT_TYPE,
    control_plane_families,
    exposition,
    telemetry_families,
)
from service.monitoring.samples import TelemetryBatch
from service.times import FORMS, time_param

router = APIRouter(tags=["telemetry"])
TIME = f"a time: {FORMS}"


@router.post(
    "/api/v1/telemetry",
    status_code=202,
    response_model=Accepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TelemetryBatch.model_json_schema()}},
        }
    },
)
async def post_telemetry(
    request: Request, titan: TitanDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Store a batch of samples, sent with the resource's own token."""
    # Parsed and checked in one pass from the raw bytes: the hottest route by volume.
    try:
        batch = TelemetryBatch.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    return await asyncio.to_thread(titan.monitor.ingest, principal, batch)


@router.get("/api/v1/telemetry/current", response_model=list[CurrentAnswer])
def current_telemetry(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Running resources the caller may see, with the newest reading of each source."""
    return titan.monitor.current(principal)


@router.get("/api/v1/resources/{type}/{name}/telemetry", response_model=TelemetryAnswer)
def resource_telemetry(
    type: str,
    name: str,
    titan: TitanDep,
    principal: CurrentPrincipal,
    metric: Annotated[str, Query(description="e.g. gpu_utilization_percent")],
    start: Annotated[str | None, Query(alias="from", description=TIME + "; default -15m")] = None,
    end: Annotated[str | None, Query(alias="to", description=TIME + "; default now")] = None,
    step: Annotated[
        float | None, Query(description="seconds per point", gt=0, le=1e9, allow_inf_nan=False)
    ] = None,
    agg: Annotated[str, Query(description="avg, min or max per step")] = "avg",
    owner: Annotated[str | None, Query(description="owner; default: the caller")] = None,
) -> JSONResponse:
    """One metric of a resource as a series per GPU or host, raw or from rollups by range;
    404 naming the known metrics for one neither standard nor stored for the resource."""
    now = titan.monitor.clock()
    # A missing ``to`` is the same now that ``from=-1h`` counts back from: the window is
    # then an hour exactly, answered from raw samples, not one just over it (rollups only).
    since, until = time_param("from", start, now), time_param("to", end, now)
    until = now if until is None else until
    # Plain JSON already: skipping FastAPI's re-encoding of thousands of points.
    return JSONResponse(
        titan.monitor.query(principal, type, name, owner, metric, since, until, step, agg)
    )


@router.get("/api/v1/telemetry/metrics", response_model=list[MetricName])
def metric_names(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Metric names a query may ask for: the samplers' standard ones and any other stored
    for a resource the caller may see (``{name, description, standard}``, by name)."""
    return titan.monitor.metric_names(principal)


@router.get("/metrics", response_class=Response)
def metrics(titan: TitanDep, principal: CurrentPrincipal) -> Response:
    """Prometheus text format: newest readings of the caller's resources (all for admins),
    and for admins the control plane's own metrics."""
    require_user(principal)
    monitor = titan.monitor
    families = telemetry_families(monitor.current(principal))
    own = None
    if principal.is_admin:
        families += control_plane_families(
            monitor.status_counts(),
            titan.reconciler.queue_depth,
            monitor.ingested,
            monitor.dropped_by_sender(),
        )
        own = titan.instruments
    return Response(exposition(families, own), media_type=CONTENT_TYPE)
