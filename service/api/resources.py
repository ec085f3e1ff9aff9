"""Read and act on resources: list, get, recipe, history, logs, outputs, start, stop,
delete."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from service.api.answers.resources import (
    RECIPE,
    ApplyAnswer,
    CredentialsAnswer,
    LogsAnswer,
    OutputsAnswer,
    ResourceAnswer,
    RunAnswer,
    StatusChange,
)
from service.api.deps import CurrentPrincipal, TitanDep
from service.core.control.state import Target
from service.core.workloads.outputs import read_chunks
from service.core.workloads.resources import PAGE_MOST
from service.times import time_param

router = APIRouter(prefix="/api/v1/resources", tags=["resources"])
ONE = "/{type}/{name}"
Owner = Annotated[str | None, Query(description="owner; default: the caller")]
JobRunNumber = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="a job's run number; default: the latest")
]


@router.get("", response_model=list[ResourceAnswer])
async def list_resources(
    request: Request,
    titan: TitanDep,
    principal: CurrentPrincipal,
    type: str | None = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MOST, description="most per page")] = PAGE_MOST,
    after: Annotated[
        str | None, Query(max_length=800, description="cursor: the Link header's rel=next")
    ] = None,
) -> Response:
    """One page of the resources the caller may see, by owner, type and name; when more
    follow, the ``Link`` header names the next page (``rel="next"``)."""
    body, after_this = await titan.listing.page(principal, type, owner, limit, after)
    # JSON already (and remembered until a resource changes): no re-encoding here.
    answer = Response(body, media_type="application/json")
    if after_this is not None:
        following = request.url.include_query_params(after=after_this)  # relative: proxies
        answer.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return answer


@router.get(ONE, response_model=ResourceAnswer)
def get_resource(
    type: str, name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> dict[str, Any]:
    """One resource: target, status, processes and endpoints."""
    return titan.resources.get(principal, type, name, owner)


@router.get(ONE + "/recipe", responses={200: {"content": {"application/json": {"schema": RECIPE}}}})
def get_recipe(
    type: str,
    name: str,
    titan: TitanDep,
    principal: CurrentPrincipal,
    response: Response,
    owner: Owner = None,
) -> dict[str, Any]:
    """The resource as a recipe that applies unchanged; its ``ETag`` is the generation,
    to send back as ``If-Match`` with an edit of it."""
    recipe, generation = titan.resources.recipe(principal, type, name, owner)
    response.headers["ETag"] = f'"{generation}"'
    return recipe


@router.get(ONE + "/history", response_model=list[StatusChange])
def get_history(
    type: str, name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> list[dict[str, Any]]:
    """Every status change, oldest first."""
    return titan.resources.history(principal, type, name, owner)


@router.get(ONE + "/logs", response_model=LogsAnswer)
async def get_logs(
    type: str,
    name: str,
    titan: TitanDep,
    principal: CurrentPrincipal,
    owner: Owner = None,
    process: str | None = None,
    tail: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    since: Annotated[
        str | None,
        Query(max_length=64, description="only lines since: ISO 8601, or back from now (10m)"),
    ] = None,
    timestamps: Annotated[bool, Query(description="prefix each line with its UTC time")] = False,
    run: JobRunNumber = None,
) -> dict[str, Any]:
    """Output of each process, from ``offset`` or the last ``tail`` lines; ``run`` names
    the process's current start (offsets begin again when it changes). With the query
    ``run`` (a job's run number), that run's job process, also after it ended."""
    start = time_param("since", since, time.time())
    return await titan.resources.logs(
        principal, type, name, owner, process, tail, offset, start, timestamps, run
    )


@router.get(ONE + "/outputs", response_model=OutputsAnswer)
def list_outputs(
    type: str,
    name: str,
    titan: TitanDep,
    principal: CurrentPrincipal,
    owner: Owner = None,
    run: JobRunNumber = None,
) -> dict[str, Any]:
    """The files a job wrote to ``$TITAN_OUTPUT_DIR`` in one run (default: its latest):
    path, size, modified time. Links and special files are listed under ``skipped`` and
    never served."""
    return titan.resources.outputs(principal, type, name, owner, run)


@router.get(
    ONE + "/outputs/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_output(
    type: str,
    name: str,
    path: str,
    titan: TitanDep,
    principal: CurrentPrincipal,
    owner: Owner = None,
    run: JobRunNumber = None,
) -> StreamingResponse:
    """One output file's bytes from one run (default: the latest; only regular files
    inside the run's folder)."""
    fd, size = titan.resources.output_file(principal, type, name, owner, path, run)
    filename = quote(path.rsplit("/", 1)[-1])
    return StreamingResponse(
        read_chunks(fd),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
        },
    )


@router.get(
    ONE + "/credentials", response_model=CredentialsAnswer, response_model_exclude_unset=True
)
def get_credentials(
    type: str, name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> dict[str, Any]:
    """The scheduler address and TLS certificate and key that reach the resource's Dask
    cluster (its owner, members of an owning group, admins)."""
    return titan.clusters.credentials(principal, type, name, owner)


def _target_route(target: Target, doc: str) -> Any:
    def route(
        type: str, name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
    ) -> dict[str, Any]:
        return titan.resources.set_target(principal, type, name, owner, target)

    route.__doc__ = doc
    route.__name__ = f"set_{target.value}"
    return route


router.add_api_route(
    ONE + "/start",
    _target_route(Target.RUNNING, "Run the resource (a finished job runs again)."),
    methods=["POST"],
    status_code=202,
    response_model=ResourceAnswer,
)
router.add_api_route(
    ONE + "/stop",
    _target_route(Target.STOPPED, "Stop every process of the resource."),
    methods=["POST"],
    status_code=202,
    response_model=ResourceAnswer,
)
router.add_api_route(
    ONE,
    _target_route(Target.DELETED, "Stop the resource and forget it."),
    methods=["DELETE"],
    status_code=202,
    response_model=ResourceAnswer,
)


@router.post("/deployment/{name}/rollback", response_model=ApplyAnswer)
def rollback(
    name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> dict[str, Any]:
    """Apply the deployment's previous recipe again (as a new generation, rolled out one
    replica at a time); 409 if it has none."""
    return titan.resources.rollback(principal, "deployment", name, owner)


@router.get("/job/{name}/runs", response_model=list[RunAnswer])
def list_runs(
    name: str,
    titan: TitanDep,
    principal: CurrentPrincipal,
    owner: Owner = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="most listed")] = 1000,
) -> list[dict[str, Any]]:
    """The job's runs, newest first: scheduled, manual and retries, and the due times
    skipped or missed (kept: ``TITAN_JOB_RUNS_KEPT`` per job)."""
    return titan.runs.list(principal, name, owner, limit)


@router.post("/job/{name}/runs", response_model=RunAnswer, status_code=201)
def run_now(
    name: str, titan: TitanDep, principal: CurrentPrincipal, owner: Owner = None
) -> dict[str, Any]:
    """Begin a run of the job now (trigger ``manual``). While a run goes on: 409 under
    ``concurrency_policy`` Forbid; under Replace that run is stopped first; under Allow it
    begins alongside (409 once ``max_concurrent_runs`` go on, or beyond the quota)."""
    return titan.runs.run_now(principal, name, owner)


@router.get("/job/{name}/runs/{number}", response_model=RunAnswer)
def get_run(
    name: str,
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    titan: TitanDep,
    principal: CurrentPrincipal,
    owner: Owner = None,
) -> dict[str, Any]:
    """One run of the job."""
    return titan.runs.get(principal, name, owner, number)
