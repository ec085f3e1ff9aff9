"""Rendering a console page: the templates, and what every page is given."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from service.console.formats import count, size
from service.core.identity.access import Principal

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# What a console page may load and do: only this origin's own scripts and styles, no
# framing (clickjacking), forms only to itself.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold names and CSRF tokens
}

# (label, path): the main navigation, in order; admins also get ADMIN_NAV.
NAV = (
    ("Resources", "/"),
    ("New resource", "/new"),
    ("Jobs", "/jobs"),
    ("Nodes", "/nodes"),
    ("Usage", "/usage"),
    ("Quotas", "/quotas"),
    ("Tokens", "/tokens"),
)
ADMIN_NAV = (
    ("Users", "/admin/users"),
    ("Groups", "/admin/groups"),
    ("Alerts", "/admin/alerts"),
    ("Audit", "/admin/audit"),
)


def local_path(path: str | None) -> str:
    """``path`` if it is a path on this site, else ``/``: a link or form of the console
    never sends the user elsewhere."""
    if path and path.startswith("/") and not path.startswith(("//", "/\\")):
        return path
    return "/"


def when(value: str | datetime | None) -> Markup:
    """A ``<time>`` element for ``value`` (ISO text or datetime, UTC): shown in UTC
    until the page's script rewrites it in the reader's timezone."""
    if value is None:
        return Markup("—")
    text = value.isoformat() if isinstance(value, datetime) else value
    shown = text.replace("T", " ")[:19] + " UTC"
    return Markup('<time datetime="{}">{}</time>').format(text, shown)


templates.env.filters.update(when=when, size=size, count=count)


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered with the page's title, the signed-in user, the navigation and
    the session's CSRF token."""
    nav = NAV + (ADMIN_NAV if principal is not None and principal.is_admin else ())
    return templates.TemplateResponse(
        request,
        template,
        {
            "title": title,
            "user": principal,
            "nav": nav,
            "here": request.url.path,
            "csrf": getattr(request.state, "csrf", ""),
            **context,
        },
        status_code=status_code,
        headers=HEADERS,
    )


def answer_line(element_id: str, text: str, role: str) -> HTMLResponse:
    """A line answering a button pressed through the page's script: ``role`` "status"
    (done: a notice) or "alert" (refused: a problem), replacing element ``element_id``."""
    kind = "problem" if role == "alert" else "notice"
    line = Markup('<p id="{}" class="{}" role="{}">{}</p>').format(
        element_id, kind, role, escape(text)
    )
    return HTMLResponse(line, headers=HEADERS)
