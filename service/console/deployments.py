"""A deployment in the console: its stable URL per route and who may call it, its replicas
with their health checks, how its rollout stands, and Rollback.

The deployment's resource page shows the serving part (:func:`serving_part`, refreshed by
the page). Replicas' health is what the front door's health checker last concluded
(:class:`~service.core.workloads.serving.ServingTable`); the rollout's state is read from
the replicas themselves (those of the recipe's revision are new, the others old) and from
the status history (a stopped rollout says why). Rollback is the API's
``POST /api/v1/resources/deployment/NAME/rollback``: the same service call, the same
refusal (409) when there is no previous recipe.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import answer_line, render
from service.console.resources import resource_path
from service.console.session import Changing, SignedIn
from service.core.control.state import Target
from service.core.identity.access import Principal
from service.core.workloads.processes import planned_processes
from service.core.workloads.replicas import Health, is_replica, revision_in
from service.core.workloads.serving import Replica, ServingTable
from service.errors import TitanError
from service.recipes.models import parse_recipe
from service.services import Titan

router = APIRouter(include_in_schema=False)
ONE = "/resources/deployment/{name}"
Owner = Annotated[str | None, Form()]
CHANGED = "deployment-changed"  # the event after which the page's serving part refreshes
STOPPED = "rollout stopped"  # how the reconciler's reason begins when a new version fails
VISIBILITY = {
    "owner": "the owner (a group's members where a group owns it) and admins",
    "group": "members of any group the owner is in",
    "account": "any signed-in user",
    "public": "anyone, without a token",
}
# (shown words, badge class) of each health the checker concludes; the badge's shape
# (✓ … ✗) says it without colour.
HEALTH = {
    Health.HEALTHY: ("healthy", "healthy"),
    Health.UNKNOWN: ("not healthy yet: no traffic", "unknown"),
    Health.FAILED: ("unhealthy: being replaced", "unhealthy"),
}


def routes_of(recipe: dict[str, Any], url: str | None) -> list[dict[str, str]]:
    """Each route of the recipe: its ``path``, ``visibility`` and what that means
    (``who``), and its ``url`` through the front door ("" before the deployment has one)."""
    routes = (recipe.get("spec") or {}).get("routes") or [{"path": "/", "visibility": "owner"}]
    shown = []
    for route in routes:
        path, visibility = route.get("path", "/"), route.get("visibility", "owner")
        shown.append(
            {
                "path": path,
                "visibility": visibility,
                "who": VISIBILITY.get(visibility, ""),
                "url": url.rstrip("/") + path if url else "",
            }
        )
    return shown


def replica_row(process: dict[str, Any], replica: Replica | None) -> dict[str, Any]:
    """A replica (a process of the resource's view) with its revision, its health in
    words and as a badge, its last health check's result and its failures in a row."""
    health = Health(process["health"]) if process.get("health") else None
    words, badge = HEALTH[health] if health is not None else ("not checked: not running", "none")
    if replica is None or not replica.next_check:
        last = "none yet"
    elif replica.last_error:
        last = f"failed: {replica.last_error}"
    elif replica.health == Health.HEALTHY:
        last = "passed"
    else:
        last = "none yet"
    return {
        **process,
        "revision": revision_in(process["name"]),
        "health_words": words,
        "health_badge": badge,
        "last_check": last,
        "failures": replica.failures if replica is not None else 0,
    }


def rollout_of(
    view: dict[str, Any],
    revision: str,
    scale: int,
    replicas: list[dict[str, Any]],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """How the rollout to ``revision`` (the recipe's, of ``scale`` replicas) stands:
    ``state`` is "done", "in progress", "stopped" (a new replica failed its health check
    while old ones serve; ``reason`` says which and why) or "none" (not meant to run), with
    ``new_healthy``, ``old_left`` and ``old_revisions``, and ``text`` saying the rest.
    ``history`` is the status changes, newest first."""
    new = [r for r in replicas if r["revision"] == revision]
    old = [r for r in replicas if r["revision"] != revision]
    healthy = sum(r["health"] == Health.HEALTHY for r in new)
    facts: dict[str, Any] = {
        "revision": revision,
        "scale": scale,
        "new_healthy": healthy,
        "old_left": len(old),
        "old_revisions": sorted({r["revision"] for r in old}),
        "reason": "",
    }
    generation = view["generation"]
    stop = next(
        (e for e in history if e["generation"] == generation and STOPPED in (e["reason"] or "")),
        None,
    )
    if view["target"] != Target.RUNNING:
        return {**facts, "state": "none", "text": f"the deployment is {view['target']}"}
    if old and stop is not None:
        reason = stop["reason"]
        text = f"revision {revision} failed; the previous version keeps serving"
        return {**facts, "state": "stopped", "reason": reason, "text": text}
    if old:
        text = (
            f"revision {revision} rolling out, {healthy} of {scale} new "
            f"replicas healthy, {len(old)} old left"
        )
        return {**facts, "state": "in progress", "text": text}
    if healthy >= scale:
        text = f"revision {revision}, {healthy} of {scale} replicas healthy"
        return {**facts, "state": "done", "text": text}
    text = f"revision {revision} starting, {healthy} of {scale} replicas healthy"
    return {**facts, "state": "in progress", "text": text}


def serving_context(
    titan: Titan,
    view: dict[str, Any],
    recipe: dict[str, Any],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """What the serving part shows of a deployment (``view`` as the API shows it, its
    stored ``recipe`` and latest status changes, newest first)."""
    wanted = planned_processes(parse_recipe(recipe), titan.settings.instance_types)
    revision = next((revision_in(name) for name in wanted if is_replica(name)), "")
    table: ServingTable = titan.serving
    served = table.find(view["owner"], view["name"])
    replicas = [
        replica_row(p, served.replicas.get(p["name"]) if served else None)
        for p in view["processes"]
        if is_replica(p["name"])
    ]
    scale = int((recipe.get("spec") or {}).get("scale", 1))
    going = view["status"] in ("starting", "degraded") or any(
        r["revision"] != revision or r["health"] != Health.HEALTHY for r in replicas
    )
    return {
        "deployment": view["name"],
        "deployment_owner": view["owner"],
        "routes": routes_of(recipe, view["endpoints"].get("url")),
        "replicas": replicas,
        "healthy": sum(r["health"] == Health.HEALTHY for r in replicas),
        "scale": scale,
        "rollout": rollout_of(view, revision, scale, replicas, history),
        "going": going,  # the part refreshes more often while something changes
    }


def _deployment(titan: Titan, principal: Principal, name: str, owner: str | None) -> Any:
    """The deployment's details (NotFound, as for any resource, where the user may not
    see it)."""
    return titan.resources.details(principal, "deployment", name, owner, changes=20)


@router.get(ONE + "/serving")
def serving_part(
    request: Request, name: str, titan: TitanDep, principal: SignedIn, owner: str | None = None
) -> Response:
    """The deployment's routes, replicas and rollout alone, for the page's refresh."""
    details = _deployment(titan, principal, name, owner)
    context = serving_context(titan, details.view, details.recipe, details.history)
    return render(request, "deployment_serving.html", principal, f"deployment/{name}", **context)


@router.post(ONE + "/rollback")
def rollback(
    request: Request, name: str, titan: TitanDep, principal: Changing, owner: Owner = None
) -> Response:
    """Apply the deployment's previous recipe again, as ``POST /api/v1/resources/
    deployment/NAME/rollback``. From the page's script: a line saying which generation
    rolls out, or why nothing does; from a plain form: back to the deployment's page, or
    the refusal's page (409 without a previous recipe)."""
    hx = bool(request.headers.get("hx-request"))
    try:
        applied = titan.resources.rollback(principal, "deployment", name, owner or None)
    except TitanError as exc:
        if not hx:
            raise
        return answer_line("rollback-answer", f"Not rolled back: {exc.message}", "alert")
    resource = applied["resource"]
    if not hx:
        return RedirectResponse(resource_path(resource, principal) + "#deployment", 303)
    text = (
        f"Rolling back: the previous recipe is generation {resource['generation']}, "
        "rolled out one replica at a time."
    )
    answer = answer_line("rollback-answer", text, "status")
    answer.headers["HX-Trigger"] = CHANGED  # the serving part shows it at once
    return answer
