"""``Hub``: the Titan API from Python, in a sync (``Hub``) and an async (``AsyncHub``) form.

Each operation is described once as a :class:`Call`; the two forms only send it.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from service.client import defaults
from service.client.accounts import Accounts, AsyncAccounts
from service.client.calls import API, Call
from service.client.errors import (
    NotFoundError,
    ServerUnavailable,
    TitanClientError,
    raise_for_answer,
)

if TYPE_CHECKING:
    from distributed.security import Security

# Statuses at which waiting for a wanted status stops with an error.
FAILED = "failed"
# Statuses of a resource that is up: its essential processes (a cluster's scheduler)
# run; a degraded one's workers are being replaced meanwhile.
UP = frozenset({"running", "degraded"})


@dataclass(frozen=True)
class ResourceRef:
    """A resource named as ``type/name`` (and optionally its owner)."""

    type: str
    name: str
    owner: str | None = None

    @classmethod
    def parse(cls, text: str, owner: str | None = None) -> ResourceRef:
        """``"cluster/my-cluster"`` → ResourceRef; ValueError naming the expected form."""
        kind, sep, name = text.partition("/")
        if not sep or not kind or not name or "/" in name:
            raise ValueError(f"{text!r}: name a resource as TYPE/NAME, e.g. cluster/my-cluster")
        return cls(kind, name, owner)

    @property
    def path(self) -> str:
        """The API path of the resource."""
        return f"{API}/resources/{self.type}/{self.name}"

    @property
    def params(self) -> dict[str, str]:
        """Query parameters naming the owner, if one was given."""
        return {"owner": self.owner} if self.owner else {}

    def __str__(self) -> str:
        return f"{self.type}/{self.name}"


def _ref(ref: ResourceRef | str) -> ResourceRef:
    return ref if isinstance(ref, ResourceRef) else ResourceRef.parse(ref)


class Calls:
    """Every API operation, as data."""

    @staticmethod
    def apply(recipe: dict[str, Any]) -> Call:
        return Call("PUT", f"{API}/recipes", body=recipe)

    @staticmethod
    def plan(recipe: dict[str, Any]) -> Call:
        return Call("POST", f"{API}/recipes/plan", body=recipe)

    @staticmethod
    def list(type: str | None = None) -> Call:
        return Call("GET", f"{API}/resources", params={"type": type} if type else {})

    @staticmethod
    def get(ref: ResourceRef) -> Call:
        return Call("GET", ref.path, ref.params)

    @staticmethod
    def action(ref: ResourceRef, verb: str) -> Call:
        if verb == "delete":
            return Call("DELETE", ref.path, ref.params)
        return Call("POST", f"{ref.path}/{verb}", ref.params)

    @staticmethod
    def sub(ref: ResourceRef, what: str, **params: Any) -> Call:
        extra = {k: v for k, v in params.items() if v is not None}
        return Call("GET", f"{ref.path}/{what}", {**ref.params, **extra})

    @staticmethod
    def telemetry(
        ref: ResourceRef,
        metric: str,
        start: float | None = None,
        end: float | None = None,
        step: float | None = None,
        agg: str = "avg",
    ) -> Call:
        return Calls.sub(
            ref, "telemetry", metric=metric, step=step, agg=agg, **{"from": start, "to": end}
        )

    @staticmethod
    def current() -> Call:
        return Call("GET", f"{API}/telemetry/current")

    @staticmethod
    def alerts(state: str | None = None) -> Call:
        return Call("GET", f"{API}/alerts", params={"state": state} if state else {})


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: building one reads the CA bundle (~50 ms)."""
    return httpx.create_ssl_context()


class _Base:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30):
        self.url = (url or defaults.server_url()).rstrip("/")
        self.token = token if token is not None else defaults.token(self.url)
        self.timeout = timeout

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _unavailable(self, exc: Exception) -> ServerUnavailable:
        return ServerUnavailable(
            f"no Titan server answers at {self.url} ({exc.__class__.__name__})"
        )


def _finished(resource: dict[str, Any], until: set[str], generation: int) -> bool:
    if resource.get("observed_generation", 0) < generation:
        return False  # the reconciler has not acted on the latest apply yet
    if resource["status"] in until:
        return True
    if resource["status"] == FAILED:
        raise TitanClientError(
            f"{resource['type']}/{resource['name']} failed: {resource['status_reason']}"
        )
    return False


class Hub(_Base, Accounts):
    """Synchronous client. Without arguments it uses ``TITAN_URL``/``TITAN_TOKEN`` or the
    local server's URL and admin token file."""

    def send(self, call: Call) -> Any:
        """Send one call; the decoded JSON answer (None for none), or a typed
        TitanClientError."""
        try:
            response = httpx.request(
                call.method,
                self.url + call.path,
                params=call.params,
                json=call.body,
                headers=self.headers,
                timeout=self.timeout,
                verify=_tls(),
            )
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        raise_for_answer(response)
        return response.json() if response.content else None

    def send_json(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Send any API request (for operations without a helper, e.g. users and tokens);
        ``params`` left None are not sent."""
        kept = {k: v for k, v in (params or {}).items() if v is not None}
        return self.send(Call(method, path, kept, body))

    def healthy(self) -> bool:
        """True if a Titan server answers at the URL."""
        try:
            return httpx.get(self.url + "/healthz", timeout=2, verify=_tls()).status_code == 200
        except httpx.TransportError:
            return False

    def apply(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """Create or update a resource; ``{"action", "resource", "plan"}``."""
        result: dict[str, Any] = self.send(Calls.apply(recipe))
        return result

    def plan(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """What applying ``recipe`` would change; applies nothing."""
        result: dict[str, Any] = self.send(Calls.plan(recipe))
        return result

    def list(self, type: str | None = None) -> builtins.list[dict[str, Any]]:
        """The resources this token may see."""
        result: builtins.list[dict[str, Any]] = self.send(Calls.list(type))
        return result

    def get(self, ref: ResourceRef | str) -> dict[str, Any]:
        """One resource."""
        result: dict[str, Any] = self.send(Calls.get(_ref(ref)))
        return result

    def nodes(self) -> builtins.list[dict[str, Any]]:
        """Every node: capacity, allocations and who holds each GPU."""
        result: builtins.list[dict[str, Any]] = self.send(Call("GET", f"{API}/nodes"))
        return result

    def start(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to run."""
        result: dict[str, Any] = self.send(Calls.action(_ref(ref), "start"))
        return result

    def stop(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to stop."""
        result: dict[str, Any] = self.send(Calls.action(_ref(ref), "stop"))
        return result

    def delete(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to be stopped and forgotten."""
        result: dict[str, Any] = self.send(Calls.action(_ref(ref), "delete"))
        return result

    def recipe(self, ref: ResourceRef | str) -> dict[str, Any]:
        """The resource as a recipe that re-applies unchanged."""
        result: dict[str, Any] = self.send(Calls.sub(_ref(ref), "recipe"))
        return result

    def history(self, ref: ResourceRef | str) -> builtins.list[dict[str, Any]]:
        """The resource's status changes, oldest first."""
        result: builtins.list[dict[str, Any]] = self.send(Calls.sub(_ref(ref), "history"))
        return result

    def logs(
        self,
        ref: ResourceRef | str,
        process: str | None = None,
        tail: int | None = None,
        offset: int = 0,
    ) -> dict[str, Any]:
        """``{"processes": {name: {"text", "offset"}}}``."""
        call = Calls.sub(_ref(ref), "logs", process=process, tail=tail, offset=offset)
        result: dict[str, Any] = self.send(call)
        return result

    def telemetry(
        self,
        ref: ResourceRef | str,
        metric: str,
        start: float | None = None,
        end: float | None = None,
        step: float | None = None,
        agg: str = "avg",
    ) -> dict[str, Any]:
        """One metric of a resource, a series per GPU or host (default: the last 15 minutes)."""
        call = Calls.telemetry(_ref(ref), metric, start, end, step, agg)
        result: dict[str, Any] = self.send(call)
        return result

    def current(self) -> builtins.list[dict[str, Any]]:
        """Running resources with the newest reading of each GPU and host."""
        result: builtins.list[dict[str, Any]] = self.send(Calls.current())
        return result

    def credentials(self, ref: ResourceRef | str) -> dict[str, Any]:
        """The resource's cluster: ``engine``, ``address`` and what reaches it (a Dask
        cluster's TLS certificate and key, a Ray cluster's ``ray_token``)."""
        result: dict[str, Any] = self.send(Calls.sub(_ref(ref), "credentials"))
        return result

    def cluster_security(self, ref: ResourceRef | str) -> Security | None:
        """What a ``distributed.Client`` needs to reach the resource's Dask scheduler:
        ``Client(address, security=hub.cluster_security(ref))`` (None: plain TCP)."""
        from service.client.security import cluster_security

        credentials = self.credentials(ref)
        return cluster_security(credentials) if credentials.get("tls_cert") else None

    def alerts(self, state: str | None = None) -> builtins.list[dict[str, Any]]:
        """Alert events, newest first (``state``: firing or resolved)."""
        result: builtins.list[dict[str, Any]] = self.send(Calls.alerts(state))
        return result

    def wait(
        self,
        ref: ResourceRef | str,
        until: set[str],
        timeout: float = 300,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 0.25,
        generation: int = 0,
    ) -> dict[str, Any]:
        """Poll until the resource's status is in ``until``; TitanClientError if it fails.

        With ``generation``, wait until the reconciler has acted on that generation
        (what ``apply`` returned). ``on_change`` is called at every status change.
        """
        deadline = time.monotonic() + timeout
        seen: tuple[str, str] | None = None
        while True:
            resource = self.get(ref)
            if (resource["status"], resource["status_reason"]) != seen:
                seen = (resource["status"], resource["status_reason"])
                if on_change is not None:
                    on_change(resource)
            if _finished(resource, until, generation):
                return resource
            if time.monotonic() > deadline:
                raise TitanClientError(f"{ref} is still {resource['status']} after {timeout:.0f}s")
            time.sleep(interval)

    def wait_gone(self, ref: ResourceRef | str, timeout: float = 60) -> None:
        """Poll until the resource no longer exists (after ``delete``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(ref)
            except NotFoundError:
                return
            time.sleep(0.25)
        raise TitanClientError(f"{ref} still exists after {timeout:.0f}s")


class AsyncHub(_Base, AsyncAccounts):
    """Asynchronous client: the same operations as :class:`Hub`, awaited."""

    async def send(self, call: Call) -> Any:
        """Send one call; the decoded JSON answer (None for none), or a typed
        TitanClientError."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=_tls()) as client:
                response = await client.request(
                    call.method,
                    self.url + call.path,
                    params=call.params,
                    json=call.body,
                    headers=self.headers,
                )
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        raise_for_answer(response)
        return response.json() if response.content else None

    async def send_json(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Send any API request (for operations without a helper, e.g. secrets and groups);
        ``params`` left None are not sent."""
        kept = {k: v for k, v in (params or {}).items() if v is not None}
        return await self.send(Call(method, path, kept, body))

    async def apply(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """Create or update a resource; ``{"action", "resource", "plan"}``."""
        result: dict[str, Any] = await self.send(Calls.apply(recipe))
        return result

    async def plan(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """What applying ``recipe`` would change; applies nothing."""
        result: dict[str, Any] = await self.send(Calls.plan(recipe))
        return result

    async def list(self, type: str | None = None) -> builtins.list[dict[str, Any]]:
        """The resources this token may see."""
        result: builtins.list[dict[str, Any]] = await self.send(Calls.list(type))
        return result

    async def get(self, ref: ResourceRef | str) -> dict[str, Any]:
        """One resource."""
        result: dict[str, Any] = await self.send(Calls.get(_ref(ref)))
        return result

    async def start(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to run."""
        result: dict[str, Any] = await self.send(Calls.action(_ref(ref), "start"))
        return result

    async def stop(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to stop."""
        result: dict[str, Any] = await self.send(Calls.action(_ref(ref), "stop"))
        return result

    async def delete(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to be stopped and forgotten."""
        result: dict[str, Any] = await self.send(Calls.action(_ref(ref), "delete"))
        return result

    async def recipe(self, ref: ResourceRef | str) -> dict[str, Any]:
        """The resource as a recipe that re-applies unchanged."""
        result: dict[str, Any] = await self.send(Calls.sub(_ref(ref), "recipe"))
        return result

    async def logs(
        self,
        ref: ResourceRef | str,
        process: str | None = None,
        tail: int | None = None,
        offset: int = 0,
    ) -> dict[str, Any]:
        """``{"processes": {name: {"text", "offset"}}}``."""
        call = Calls.sub(_ref(ref), "logs", process=process, tail=tail, offset=offset)
        result: dict[str, Any] = await self.send(call)
        return result

    async def telemetry(
        self,
        ref: ResourceRef | str,
        metric: str,
        start: float | None = None,
        end: float | None = None,
        step: float | None = None,
        agg: str = "avg",
    ) -> dict[str, Any]:
        """One metric of a resource, a series per GPU or host (default: the last 15 minutes)."""
        call = Calls.telemetry(_ref(ref), metric, start, end, step, agg)
        result: dict[str, Any] = await self.send(call)
        return result

    async def current(self) -> builtins.list[dict[str, Any]]:
        """Running resources with the newest reading of each GPU and host."""
        result: builtins.list[dict[str, Any]] = await self.send(Calls.current())
        return result

    async def credentials(self, ref: ResourceRef | str) -> dict[str, Any]:
        """The resource's cluster: ``engine``, ``address`` and what reaches it."""
        result: dict[str, Any] = await self.send(Calls.sub(_ref(ref), "credentials"))
        return result

    async def cluster_security(self, ref: ResourceRef | str) -> Security | None:
        """What a ``distributed.Client`` needs to reach the resource's Dask scheduler."""
        from service.client.security import cluster_security

        credentials = await self.send(Calls.sub(_ref(ref), "credentials"))
        return cluster_security(credentials) if credentials.get("tls_cert") else None

    async def alerts(self, state: str | None = None) -> builtins.list[dict[str, Any]]:
        """Alert events, newest first (``state``: firing or resolved)."""
        result: builtins.list[dict[str, Any]] = await self.send(Calls.alerts(state))
        return result

    async def wait(
        self,
        ref: ResourceRef | str,
        until: set[str],
        timeout: float = 300,
        interval: float = 0.25,
        generation: int = 0,
    ) -> dict[str, Any]:
        """Poll until the resource's status is in ``until`` (at ``generation``, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            resource = await self.get(ref)
            if _finished(resource, until, generation):
                return resource
            if time.monotonic() > deadline:
                raise TitanClientError(f"{ref} is still {resource['status']} after {timeout:.0f}s")
            await asyncio.sleep(interval)

    async def wait_gone(self, ref: ResourceRef | str, timeout: float = 60) -> None:
        """Poll until the resource no longer exists (after ``delete``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self.get(ref)
            except NotFoundError:
                return
            await asyncio.sleep(0.25)
        raise TitanClientError(f"{ref} still exists after {timeout:.0f}s")
