"""The console on the application: its pages, static files and error pages."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from service.console import (
    alerts,
    audit,
    deployments,
    groups,
    jobs,
    new,
    nodes,
    quotas,
    resource,
    resources,
    runs,
    sign_in,
    tokens,
    usage,
    users,
)
from service.console.pages import STATIC, render
from service.console.session import NotSignedIn
from service.errors import TitanError

# ``router`` each
PAGES = (sign_in, resources, resource, runs, deployments, new, tokens, usage, quotas, nodes, jobs)
ADMIN_PAGES = (users, groups, alerts, audit)


def add_console(app: FastAPI) -> None:
    """Serve the console at ``/`` beside the API."""
    for module in PAGES + ADMIN_PAGES:
        app.include_router(module.router)
    app.state.console_tables = resources.Tables()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        where = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"/sign-in?next={quote(where)}"
        if request.headers.get("hx-request"):  # a live update: the whole page goes
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


def wants_page(request: Request) -> bool:
    """Whether an error should be answered as a console page (a browser asking for a page
    outside the API) rather than as the API's JSON error."""
    path = request.url.path
    return "text/html" in request.headers.get("accept", "") and not path.startswith(
        ("/api/", "/jupyter/", "/dashboards/")
    )


def error_page(request: Request, exc: TitanError) -> HTMLResponse:
    """A refusal as a console page."""
    principal = getattr(request.state, "principal", None)
    return render(request, "error.html", principal, "Problem", exc.status_code, message=exc.message)
