"""A Saturn deployment's fields as a Titan deployment's: its command on ``$PORT``,
``scale``, ``routes`` with their visibility, and a health check.

Saturn runs a deployment's command in a container whose port (8000 in the 2022 schema,
"the command must listen to port 8000 ... bound to 0.0.0.0"; a route's
``container_port`` since 2023) it publishes at a subdomain of its own. Titan gives each
replica a port of its own in ``$PORT`` and the address to listen on in
``$TITAN_BIND_HOST``, and serves every replica at one URL,
``<server>/deploy/<owner>/<name>/``. So:

- ``command``: the port and ``0.0.0.0`` written in it (outside single quotes, where the
  shell would not expand a variable) become ``${PORT}`` and ``${TITAN_BIND_HOST}``, each
  change reported. A command that does not show its port is refused (its replicas would
  never answer on ``$PORT``); with ``--lenient`` it is kept as it is, saying so.
- ``scale`` (2023 on) is kept, ``instance_count`` (2022) translated to it: replicas.
- The first route is Titan's route ``/``: its ``visibility`` translated (``owner`` →
  ``owner``; ``org`` and ``account`` → ``account``, any signed-in user of this Titan;
  ``unauthenticated`` → ``public``), its ``container_port`` the port rewritten in the
  command, its ``subdomain`` dropped (the URL is Titan's). 2022's ``public: true`` is
  ``public``, and without it (or without routes) ``account``, as Saturn let any
  signed-in user in by default. A second route (another port or subdomain) is refused:
  Titan serves one port of each replica at one URL.
- ``healthcheck`` (a path; Saturn's API has it beside the recipe) is
  ``health_check.path``; without it Titan checks ``GET /``, which the report says.
- ``viewers`` (users or groups let in beside the visibility) are refused: Titan lets
  callers in by visibility only (``--lenient`` drops them: fewer callers, never more).

Workspaces and jobs have none of these: their ``scale``, ``routes`` and ``viewers`` are
refused (a value meaning what Titan does anyway, ``scale: 1``, is dropped before).
"""

from __future__ import annotations

import re
from typing import Any

from service.json_values import join_path, quoted
from service.recipes.importers.draft import Draft
from service.recipes.importers.saturn_document import SaturnDocument, SaturnField

SATURN_PORT = 8000  # the port a 2022 deployment's command listens on, and a route's default
ANY_ADDRESS = "0.0.0.0"
PORT, BIND_HOST = "${PORT}", "${TITAN_BIND_HOST}"
ROUTE_FIELDS = ("subdomain", "container_port", "visibility")
VISIBILITY = {"owner": "owner", "org": "account", "account": "account", "unauthenticated": "public"}
SAID = {
    "owner": "only its owner (the members of an owning group) and admins",
    "account": "any signed-in user of this Titan",
    "public": "anyone, without a token",
}
URL = "<server>/deploy/<owner>/<name>/"
# Fields whose "same as Titan" value (scale 1, public false) a deployment translates
# rather than drops.
FIELDS = ("scale", "instance_count", "public")
NOT_HERE = {
    "workspace": "a Titan workspace serves JupyterLab only; serve another port as a deployment "
    "of its own",
    "job": "a Titan job runs one copy of its command and serves nothing; give it a dask_cluster "
    "for more workers, or serve as a deployment",
}


def only_deployments(draft: Draft, item: SaturnField) -> bool:
    """True if ``draft`` is a deployment; otherwise ``item`` is refused, saying why."""
    if draft.kind == "deployment":
        return True
    draft.refuse(item.path, NOT_HERE.get(draft.kind, "only a Titan deployment has it"), item.value)
    return False


def scale(draft: Draft, item: SaturnField) -> None:
    """``scale`` or ``instance_count`` as the deployment's ``spec.scale``."""
    if not only_deployments(draft, item):
        return
    value = item.value
    problem = "replicas are a whole number" if type(value) is not int else None
    problem = problem or draft.titan_problem({"scale": value})
    if problem is not None:
        draft.refuse(item.path, problem, value)
    elif "scale" in draft.recipe["spec"]:
        draft.refuse(item.path, "the replicas are given twice (scale and instance_count)", value)
    elif item.name == "scale":
        draft.keep(item.path, ("spec", "scale"), value, "replicas, balanced by the front door")
    else:
        draft.translate(
            item.path,
            ("spec", "scale"),
            value,
            "instances are replicas, balanced by the front door",
        )


def subdomain(draft: Draft, item: SaturnField) -> None:
    """A subdomain is dropped: Titan serves at a path of its own address."""
    where = URL if draft.kind == "deployment" else "a path of the control plane's address"
    draft.drop(item.path, f"Titan serves a {draft.kind} at {where}, not at a subdomain")


def public(draft: Draft, item: SaturnField) -> None:
    """2022's ``public`` as the visibility of the route ``/``."""
    if not only_deployments(draft, item):
        return
    if type(item.value) is not bool:
        draft.refuse(item.path, "public is true or false", item.value)
        return
    visibility = "public" if item.value else "account"
    _route(draft, item.path, visibility, f"public: {str(item.value).lower()}")


def routes(draft: Draft, item: SaturnField) -> None:
    """The first route as Titan's route ``/``; any other refused."""
    if not only_deployments(draft, item):
        return
    if not isinstance(item.value, list):
        draft.refuse(item.path, "a list of routes", item.value)
        return
    for index, route in enumerate(item.value):
        path = f"{item.path}[{index}]"
        if not isinstance(route, dict):
            draft.refuse(path, "a route is an object", route)
        elif index > 0:
            draft.refuse(
                path,
                "Titan serves a deployment at one URL, from one port of each replica: serve "
                "this route's port from the first one, or as a deployment of its own",
                route,
            )
        else:
            _first_route(draft, path, route)


def _first_route(draft: Draft, path: str, route: dict[str, Any]) -> None:
    for key, value in route.items():
        here = join_path(path, key)
        if key == "subdomain":
            draft.drop(here, f"Titan serves a deployment at {URL}, not at a subdomain")
        elif key == "container_port":
            if port_of(route) is None:
                draft.refuse(here, "a port is a whole number from 1 to 65535", value)
            else:
                draft.note(
                    here,
                    "spec.command",
                    f"each replica listens on the port Titan gives it, $PORT, which the "
                    f"command names where it named {value}",
                )
        elif key != "visibility":
            draft.refuse(
                here, f"not a Saturn route field Titan knows ({', '.join(ROUTE_FIELDS)})", value
            )
    visibility = route.get("visibility")
    if visibility is None:
        _route(draft, join_path(path, "visibility") if "visibility" in route else path,
               "account", "no visibility (Saturn's default: the organisation)")  # fmt: skip
    elif visibility not in VISIBILITY:
        draft.refuse(
            join_path(path, "visibility"),
            f"not one of Saturn's visibilities ({', '.join(VISIBILITY)})",
            visibility,
        )
    else:
        _route(draft, join_path(path, "visibility"), VISIBILITY[visibility], quoted(visibility))


def _route(draft: Draft, field: str, visibility: str, saturn: str) -> None:
    route = {"path": "/", "visibility": visibility}
    why = f"Saturn's {saturn}: the route / lets in {SAID[visibility]}, at {URL}"
    draft.translate(field, ("spec", "routes"), [route], why)


def default_route(draft: Draft, document: SaturnDocument) -> str:
    """For a deployment whose document sets no visibility (no routes, no ``public``):
    the route ``/`` for any signed-in user, as Saturn's default; what the report says."""
    if document.value("routes") not in (None, []) or document.value("public") is not None:
        return ""
    draft.recipe["spec"]["routes"] = [{"path": "/", "visibility": "account"}]
    return (
        f"; with no routes, spec.routes is / for any signed-in user (Saturn's default: its "
        f"organisation), at {URL}"
    )


def port_of(route: Any) -> int | None:
    """The container port a Saturn route names (8000 where it names none); None if not a port."""
    value = route.get("container_port", SATURN_PORT) if isinstance(route, dict) else SATURN_PORT
    return value if type(value) is int and 0 < value < 65536 else None


def saturn_port(document: SaturnDocument) -> int:
    """The port a Saturn deployment's command listens on: its first route's, else 8000."""
    found = document.value("routes")
    first = found[0] if isinstance(found, list) and found else None
    return port_of(first) or SATURN_PORT


def command(draft: Draft, item: SaturnField, document: SaturnDocument) -> None:
    """The command, listening on ``$PORT`` (and ``$TITAN_BIND_HOST``) where it named
    Saturn's port (and 0.0.0.0); refused where it shows no port (kept with --lenient)."""
    value, port = item.value, saturn_port(document)
    problem = draft.titan_problem({"command": value}) if isinstance(value, str) else None
    if not isinstance(value, str) or problem is not None:
        draft.invalid(item.path, problem or "a Saturn deployment's command is text", value)
        return
    rewritten, changes = listening_on_port(value, port)
    checked = health_check_note(document) + default_route(draft, document)
    if rewritten is None:
        why = (
            f"the command shows no port {port} outside single quotes, so the import cannot "
            "make it listen on $PORT, the port Titan gives each replica (on "
            "$TITAN_BIND_HOST); write it to (e.g. --port $PORT --host $TITAN_BIND_HOST) "
            "and import again"
        )
        if draft.lenient:
            why = f"kept as it is (--lenient): {why}{checked}"
            draft.keep(item.path, ("spec", "command"), value, why)
        else:
            draft.refuse(item.path, why, value)
        return
    if len(changes) == 1:  # no 0.0.0.0
        changes.append(
            "it names no address: it must listen on $TITAN_BIND_HOST (127.0.0.1 on a shared "
            "host), as Saturn's had to on 0.0.0.0"
        )
    why = "run by the shell; " + ", ".join(changes) + checked
    draft.translate(item.path, ("spec", "command"), rewritten, why)


def health_check_note(document: SaturnDocument) -> str:
    """What the command's row says of the health check when Saturn's gives none."""
    if document.value("healthcheck") is not None:
        return ""
    return (
        "; no healthcheck given: Titan sends GET / to each replica and lets traffic in once "
        "it answers 2xx or 3xx (set spec.health_check.path where / answers otherwise)"
    )


def healthcheck(draft: Draft, item: SaturnField) -> None:
    """Saturn's ``healthcheck`` path as ``spec.health_check.path``."""
    if not only_deployments(draft, item):
        return
    value = item.value
    problem = "a health check is a path, as text" if not isinstance(value, str) else None
    problem = problem or draft.titan_problem({"health_check": {"path": value}})
    if problem is not None:
        draft.refuse(item.path, problem, value)
        return
    draft.keep(
        item.path,
        ("spec", "health_check", "path"),
        value,
        "GET it must answer 2xx or 3xx before a replica gets traffic; a replica failing it 3 "
        "times in a row is replaced",
    )


def viewers(draft: Draft, item: SaturnField) -> None:
    """Viewers are refused: Titan lets callers in by a route's visibility only."""
    draft.refuse(
        item.path,
        "Titan lets callers in by the route's visibility (owner, group, account, public), "
        "not by a list of viewers: give the deployment to a group to let its members in, or "
        "widen the visibility",
        item.value,
    )


# The shell's words by quoting: single-quoted (nothing expands), a backslash escape,
# double-quoted (variables expand) and bare text; an unclosed quote runs to the end.
_QUOTED = re.compile(r"'[^']*(?:'|\Z)|\\.?|\"(?:[^\"\\]|\\.)*(?:\"|\Z)|[^'\"\\]+", re.DOTALL)


def listening_on_port(text: str, port: int) -> tuple[str | None, list[str]]:
    """``text`` with ``port`` and 0.0.0.0 written as ``${PORT}`` and
    ``${TITAN_BIND_HOST}`` wherever the shell expands variables (not in single quotes),
    and what was changed; ``(None, [])`` if the port shows nowhere it could change."""
    number = re.compile(rf"(?<![\w.]){port}(?![\w.])")
    address = re.compile(rf"(?<![\w.]){re.escape(ANY_ADDRESS)}(?![\w.])")
    parts, ports, hosts = [], 0, 0
    for found in _QUOTED.finditer(text):
        part = found.group()
        if not part.startswith(("'", "\\")):
            part, more_ports = number.subn(PORT, part)
            part, more_hosts = address.subn(BIND_HOST, part)
            ports, hosts = ports + more_ports, hosts + more_hosts
        parts.append(part)
    if not ports:
        return None, []
    changes = [f"{port} → {PORT}"] + ([f"{ANY_ADDRESS} → {BIND_HOST}"] if hosts else [])
    return "".join(parts), changes
