"""Deployments through the control plane: ``/deploy/<owner>/<name>/<path>``.

The stable URL of a deployment. Each request is let through by the visibility
of the route serving its path (``owner``, ``group``, ``account``, ``public``;
a Titan token in ``Authorization: Bearer``, or for reads the web console's
session cookie) and relayed — method, query and body — to the next healthy
replica in turn. A replica that refuses the connection (it stopped meanwhile)
gets the request sent to another one, once, so a rollout fails no request. The
caller's token and cookies never reach the replica; it gets ``X-Titan-User``
(the caller's user name, where signed in) instead.

A deployment's pages share the control plane's origin with the web console, so
what a replica answers is made harmless there: ``Content-Security-Policy:
sandbox`` (without ``allow-same-origin``) runs its pages as an opaque origin —
their scripts run, but cannot read the console or send its session cookie — and
its ``Set-Cookie`` headers are dropped (they would land on the console's origin,
e.g. sign a visitor in as the deployment's owner).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from service.api.relay import CHANGES, relay_request
from service.console.session import session_secret
from service.core.identity.access import Principal, check_route
from service.core.workloads.serving import Replica, Served
from service.errors import NotFound, TitanError, Unauthenticated

if TYPE_CHECKING:
    from service.services import Titan

router = APIRouter(tags=["deployments"], include_in_schema=False)
METHODS = ["GET", "HEAD", "OPTIONS", *CHANGES]
RETRY_AFTER = 2  # seconds a caller finding no healthy replica is asked to wait
# A replica's pages: scripts, forms, pop-ups and downloads, in an origin of their own.
SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-downloads allow-modals"


class NoReplica(TitanError):
    """No healthy replica can answer now (503, with ``Retry-After``)."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(RETRY_AFTER)}


class BadAnswer(TitanError):
    """The replica's answer did not come: it broke off (502) or took too long (504)."""

    status_code = 502
    code = "bad_gateway"


class LateAnswer(BadAnswer):
    """The replica did not answer in time (504)."""

    status_code = 504
    code = "gateway_timeout"


@router.api_route("/deploy/{owner}/{name}", methods=METHODS)
@router.api_route("/deploy/{owner}/{name}/{path:path}", methods=METHODS)
async def deployment_request(
    owner: str,
    name: str,
    request: Request,
    path: str = "",
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """One request to deployment ``owner``/``name``, relayed to a healthy replica."""
    titan: Titan = request.app.state.titan
    principal = await _caller(titan, request, authorization)
    what = f"deployment {name!r} of owner {owner!r}"
    served = titan.serving.find(owner, name)
    if served is None:  # perhaps applied a moment ago
        await titan.health_checks.refresh()
        served = titan.serving.find(owner, name)
    if served is None:
        if principal is None:  # whether it exists is said to signed-in callers only
            raise Unauthenticated(f"{what} needs a Titan token: send 'Authorization: Bearer'")
        raise NotFound(f"{what} not found (or not running)")
    route = served.route_for(f"/{path}")
    if route is None:
        check_route(principal, "owner", served.owner, served.owner_groups, what)
        paths = ", ".join(p for p, _ in served.routes)
        raise NotFound(f"{what} serves no route for /{path}; its routes: {paths}")
    check_route(principal, route[1], served.owner, served.owner_groups, what)
    added = {"X-Titan-User": principal.user_name} if principal is not None else {}
    return await _relay(titan, served, request, path, added)


async def _caller(titan: Titan, request: Request, authorization: str | None) -> Principal | None:
    """Who calls: a bearer token's user, for reads the console session's, else nobody."""
    if authorization is None and request.method in ("GET", "HEAD"):
        secret = session_secret(request)
        authorization = f"Bearer {secret}" if secret else None
    if authorization is None:
        return None
    client = request.client.host if request.client else ""
    return await titan.authenticate(authorization, client)


async def _relay(
    titan: Titan, served: Served, request: Request, path: str, added: dict[str, str]
) -> Response:
    """``request`` answered by a healthy replica; another one once if the first refuses
    the connection; counted in the deployment's metrics."""
    started = time.perf_counter()
    tried: list[str] = []
    error = True
    try:
        for _attempt in range(2):
            replica = titan.serving.pick(served, avoid=tried)
            if replica is None:
                break
            tried.append(replica.name)
            try:
                response = await _send(titan, replica, request, path, added)
            except httpx.ConnectError:
                continue  # it never got the request: another replica may answer
            except httpx.RemoteProtocolError as exc:
                if request.method in CHANGES:  # it may have been acted on: never sent twice
                    return _refusal(BadAnswer(f"{replica.name} broke off its answer: {exc}"))
                continue
            except httpx.TimeoutException:
                seconds = titan.http.timeout.read
                return _refusal(LateAnswer(f"{replica.name} did not answer within {seconds}s"))
            except httpx.HTTPError as exc:
                return _refusal(BadAnswer(f"{replica.name} could not be reached: {exc!r}"))
            error = response.status_code >= 500
            return _contained(response)
        if tried:
            names = ", ".join(tried)
            return _unavailable(f"no replica of {served.name!r} answered (tried {names})")
        return _unavailable(
            f"no healthy replica of deployment {served.name!r}: "
            f"{len(served.replicas)} running, none passing its health check "
            f"GET {served.check.path}; try again shortly"
        )
    finally:
        seconds = time.perf_counter() - started
        served.counts.add(seconds, error)
        titan.instruments.observe_deployment(f"{served.owner}/{served.name}", seconds, error)


async def _send(
    titan: Titan, replica: Replica, request: Request, path: str, added: dict[str, str]
) -> Response:
    replica.in_flight += 1
    try:
        return await relay_request(titan.http, request, f"{replica.url}/{path}", added, "")
    finally:
        replica.in_flight -= 1


def _contained(response: Response) -> Response:
    """A replica's answer, unable to act as the console's origin (see the module's doc)."""
    del response.headers["set-cookie"]  # every one of them
    response.headers.append("content-security-policy", SANDBOX)
    return response


def _unavailable(message: str) -> Response:
    return _refusal(NoReplica(message))


def _refusal(exc: TitanError) -> Response:
    """``exc`` as the API answers it (returned, not raised: the request is counted)."""
    return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers)
