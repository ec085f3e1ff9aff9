"""One resource's page: status and history, endpoints, processes, live logs, charts,
the recipe with plan-then-apply, scaling, a job's runs and schedule, and a deployment's
routes, replicas, rollout and rollback."""

from __future__ import annotations

import difflib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console import deployments, runs
from service.console.pages import render
from service.console.recipe_forms import problems_of, read_recipe
from service.console.resources import resource_path
from service.console.session import Changing, SignedIn
from service.core.identity.access import Principal
from service.core.workloads.resources import Details, recipe_engine
from service.errors import InvalidInput, TitanError
from service.services import Titan

router = APIRouter(include_in_schema=False)
ONE = "/resources/{type}/{name}"
Owner = Annotated[str | None, Form()]

# The charts every resource page offers: (metric, title, unit).
CHARTS = (
    ("gpu_utilization_percent", "GPU utilisation", "%"),
    ("gpu_memory_used_percent", "GPU memory in use", "%"),
    ("gpu_temperature_celsius", "GPU temperature", "°C"),
    ("gpu_power_watts", "GPU power", "W"),
    ("host_cpu_percent", "Host CPU", "%"),
    ("host_memory_used_percent", "Host memory in use", "%"),
    ("process_cpu_percent", "Process CPU", "%"),
    ("process_memory_bytes", "Process memory", "bytes"),
)
# A deployment's: what its front door counted (source ``deploy:front_door``), then the
# host's and its replicas' own use.
DEPLOYMENT_CHARTS = (
    ("requests_per_second", "Requests", "req/s"),
    ("errors_per_second", "Errors (5xx or no answer)", "req/s"),
    ("latency_ms", "Latency, mean", "ms"),
    ("latency_p95_ms", "Latency, 95th percentile", "ms"),
    *CHARTS[4:],
)
# What the scale control sets, by type: the recipe's spec field.
SCALED = {"cluster": "n_workers", "deployment": "scale"}


def shown_recipe(recipe: dict[str, Any]) -> str:
    """A recipe as the editor shows it."""
    return json.dumps(recipe, indent=2, ensure_ascii=False)


def facts(titan: Titan, principal: Principal, type: str, name: str, owner: str | None) -> Details:
    """What the page shows, read at once: the resource with its page, engine and latest
    status changes, and its recipe."""
    details = titan.resources.details(principal, type, name, owner, changes=50)
    details.view["page"] = resource_path(details.view, principal)
    details.view["engine"] = recipe_engine(details.recipe) or ""
    details.view["history"] = details.history
    return details


@router.get(ONE)
def resource_page(
    request: Request,
    type: str,
    name: str,
    titan: TitanDep,
    principal: SignedIn,
    owner: str | None = None,
) -> Response:
    """The resource's page."""
    details = facts(titan, principal, type, name, owner)
    recipe, view = details.recipe, details.view
    jobs = runs.runs_context(titan, principal, view, recipe) if type == "job" else None
    serving = (
        deployments.serving_context(titan, view, recipe, details.history)
        if type == "deployment"
        else None
    )
    return render(
        request,
        "resource.html",
        principal,
        f"{type}/{name}",
        r=view,
        recipe=shown_recipe(recipe),
        generation=details.generation,
        charts=DEPLOYMENT_CHARTS if type == "deployment" else CHARTS,
        scalable=type in SCALED,
        workers=serving["scale"]
        if serving
        else (recipe.get("spec") or {}).get(SCALED.get(type, "")),
        runs_part=jobs,
        serving_part=serving,
    )


@router.get(ONE + "/live")
def live_part(
    request: Request,
    type: str,
    name: str,
    titan: TitanDep,
    principal: SignedIn,
    owner: str | None = None,
) -> Response:
    """The page's live part (status, endpoints, processes, history) alone."""
    view = facts(titan, principal, type, name, owner).view
    return render(request, "resource_live.html", principal, view["name"], r=view)


@router.post(ONE + "/plan")
def plan(
    request: Request,
    type: str,
    name: str,
    titan: TitanDep,
    principal: Changing,
    recipe: Annotated[str, Form()],
    owner: Owner = None,
) -> Response:
    """What applying the edited recipe would change: the plan and the diff."""
    current, generation = titan.resources.recipe(principal, type, name, owner)
    try:
        data = read_recipe(recipe)
        planned = titan.resources.plan(principal, data)
    except TitanError as exc:
        return render(
            request, "plan.html", principal, name, problems=problems_of(exc), error=exc.message
        )
    diff = difflib.unified_diff(
        shown_recipe(current).splitlines(),
        shown_recipe(data).splitlines(),
        "applied",
        "edited",
        lineterm="",
    )
    return render(
        request,
        "plan.html",
        principal,
        name,
        plan=planned,
        diff=list(diff)[2:],
        recipe=recipe,
        generation=generation,
        owner=owner or "",
        action=f"{ONE.format(type=type, name=name)}/apply",
    )


@router.post(ONE + "/apply")
def apply(
    request: Request,
    type: str,
    name: str,
    titan: TitanDep,
    principal: Changing,
    recipe: Annotated[str, Form()],
    generation: Annotated[int, Form()],
    owner: Owner = None,
) -> Response:
    """Apply the planned recipe if nobody changed the resource since the plan."""
    applied = titan.resources.apply(principal, read_recipe(recipe), generation)
    return RedirectResponse(resource_path(applied["resource"], principal), status_code=303)


@router.post(ONE + "/scale")
def scale(
    request: Request,
    type: str,
    name: str,
    titan: TitanDep,
    principal: Changing,
    workers: Annotated[int, Form(ge=0, le=10_000)],
    owner: Owner = None,
) -> Response:
    """Set a cluster's worker count (its recipe's ``spec.n_workers``) or a deployment's
    replicas (``spec.scale``; the recipe's own limits answer a bad count)."""
    recipe, generation = titan.resources.recipe(principal, type, name, owner)
    field = SCALED.get(type)
    if field is None:
        raise InvalidInput(
            f"workers: only clusters and deployments scale; edit this {type}'s recipe instead"
        )
    recipe["spec"] = {**(recipe.get("spec") or {}), field: workers}
    applied = titan.resources.apply(principal, recipe, generation)
    return RedirectResponse(resource_path(applied["resource"], principal), status_code=303)
