"""Resources: apply recipes, read and act on what runs, and wait for it."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from service.client.calls import API, Call
from service.client.errors import ConflictError, NotFoundError, TitanClientError
from service.client.transport import Transport

if TYPE_CHECKING:
    from distributed.security import Security

# The status at which waiting for a wanted status stops with an error.
FAILED = "failed"
# Statuses of a resource that is up: its essential processes (a cluster's scheduler)
# run; a degraded one's workers are being replaced meanwhile.
UP = frozenset({"running", "degraded"})
EDIT_ATTEMPTS = 5  # Resources.edit redoes an edit this often when other applies win


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


def as_ref(ref: ResourceRef | str) -> ResourceRef:
    """``ref`` as a ResourceRef (parsing ``"type/name"``)."""
    return ref if isinstance(ref, ResourceRef) else ResourceRef.parse(ref)


def about(ref: ResourceRef | str, what: str, **params: Any) -> Call:
    """A GET of one of the resource's sub-paths (``recipe``, ``logs``...); ``params``
    left None are not sent."""
    target = as_ref(ref)
    extra = {k: v for k, v in params.items() if v is not None}
    return Call("GET", f"{target.path}/{what}", {**target.params, **extra})


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


class Resources(Transport):
    """Recipes and resources (``/api/v1/recipes``, ``/api/v1/resources``)."""

    async def apply(
        self, recipe: dict[str, Any], if_generation: int | None = None
    ) -> dict[str, Any]:
        """Create or update a resource; ``{"action", "resource", "plan"}``.

        With ``if_generation`` (from :meth:`editable_recipe`; 0: only create) it applies
        only if nobody changed the resource since, else ConflictError.
        """
        headers = {} if if_generation is None else {"If-Match": f'"{if_generation}"'}
        call = Call("PUT", f"{API}/recipes", body=recipe, headers=headers)
        result: dict[str, Any] = await self.send(call)
        return result

    async def plan(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """What applying ``recipe`` would change; applies nothing."""
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/recipes/plan", body=recipe))
        return result

    async def import_saturn(self, document: Any, lenient: bool = False) -> dict[str, Any]:
        """Titan recipes made from a Saturn Cloud recipe, and a report row for each of its
        fields: ``{"recipes", "report"}``; applies nothing. InvalidError naming each field
        Titan cannot honour, unless ``lenient`` (then dropped, the reason reported)."""
        params = {"lenient": "true"} if lenient else {}
        call = Call("POST", f"{API}/recipes/import/saturn", params, body=document)
        result: dict[str, Any] = await self.send(call)
        return result

    async def list(self, type: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every resource this token may see (of one ``type``, if given), all pages."""
        params = {"type": type} if type else {}
        answer = await self._exchange(Call("GET", f"{API}/resources", params))
        result: builtins.list[dict[str, Any]] = answer.json()
        while "next" in answer.links:  # one page at a time, as the server hands them out
            following = httpx.URL(answer.links["next"]["url"]).params  # type, owner, after
            answer = await self._exchange(Call("GET", f"{API}/resources", dict(following)))
            result.extend(answer.json())
        return result

    async def get(self, ref: ResourceRef | str) -> dict[str, Any]:
        """One resource: status, processes, endpoints."""
        target = as_ref(ref)
        result: dict[str, Any] = await self.send(Call("GET", target.path, target.params))
        return result

    async def _act(self, ref: ResourceRef | str, verb: str) -> dict[str, Any]:
        target = as_ref(ref)
        if verb == "delete":
            call = Call("DELETE", target.path, target.params)
        else:
            call = Call("POST", f"{target.path}/{verb}", target.params)
        result: dict[str, Any] = await self.send(call)
        return result

    async def start(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to run (a finished job runs again)."""
        return await self._act(ref, "start")

    async def stop(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to stop; its recipe is kept."""
        return await self._act(ref, "stop")

    async def delete(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Ask for the resource to be stopped and forgotten."""
        return await self._act(ref, "delete")

    async def rollback(self, ref: ResourceRef | str) -> dict[str, Any]:
        """Apply a deployment's previous recipe again (a new generation, rolled out one
        replica at a time); ``{"action", "resource", "plan"}`` as :meth:`apply` returns.
        ConflictError if it has no previous recipe."""
        target = as_ref(ref)
        if target.type != "deployment":
            raise ValueError(f"rollback is for deployments, not {target.type}s")
        call = Call("POST", f"{target.path}/rollback", target.params)
        result: dict[str, Any] = await self.send(call)
        return result

    async def recipe(self, ref: ResourceRef | str) -> dict[str, Any]:
        """The resource as a recipe that re-applies unchanged."""
        result: dict[str, Any] = await self.send(about(ref, "recipe"))
        return result

    async def editable_recipe(self, ref: ResourceRef | str) -> tuple[dict[str, Any], int]:
        """The resource's recipe and the generation it is, read together: apply the edited
        recipe with ``if_generation=`` that generation to lose nobody's change."""
        answer = await self._exchange(about(ref, "recipe"))
        return answer.json(), int(answer.headers["etag"].strip('"'))

    async def edit(
        self, ref: ResourceRef | str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Apply ``change`` (which edits a recipe in place) to the resource's recipe
        without losing anyone's concurrent apply: the edit goes onto the generation it
        was read from, and is redone on the newer recipe if another apply came first
        (ConflictError after EDIT_ATTEMPTS tries). The apply's answer."""
        for attempt in range(EDIT_ATTEMPTS):
            recipe, generation = await self.editable_recipe(ref)
            change(recipe)
            try:
                return await self.apply(recipe, if_generation=generation)
            except ConflictError:
                if attempt == EDIT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def history(self, ref: ResourceRef | str) -> builtins.list[dict[str, Any]]:
        """The resource's status changes, oldest first."""
        result: builtins.list[dict[str, Any]] = await self.send(about(ref, "history"))
        return result

    async def outputs(self, ref: ResourceRef | str, run: int | None = None) -> dict[str, Any]:
        """The files a job wrote to ``$TITAN_OUTPUT_DIR`` in run ``run`` (default: its
        latest): ``{"files": [{"path", "size", "modified"}], "skipped": [links and special
        files, never served], "truncated", "run"}``."""
        result: dict[str, Any] = await self.send(about(ref, "outputs", run=run))
        return result

    async def download_output(
        self, ref: ResourceRef | str, path: str, to: str | Path, run: int | None = None
    ) -> int:
        """Save the job's output file ``path`` (as :meth:`outputs` lists it) of run ``run``
        (default: the latest) to ``to``; the bytes written. NotFoundError names the files
        there are not."""
        call = about(ref, "outputs/" + quote(path, safe="/"), run=run)
        return await self.download(call, Path(to))

    async def logs(
        self,
        ref: ResourceRef | str,
        process: str | None = None,
        tail: int | None = None,
        offset: int = 0,
        since: str | None = None,
        timestamps: bool = False,
        job_run: int | None = None,
    ) -> dict[str, Any]:
        """Output of the resource's processes: ``{"processes": {name: {"text", "offset",
        "run"}}}`` (pass ``offset`` back to read only what came after, while ``run`` stays
        the same: it changes when the process restarts). ``since``: only lines that began
        then or later (ISO 8601, or back from now: ``10m``); ``timestamps``: each line
        prefixed with its UTC time; ``job_run``: a job's run (by number), also one that
        ended."""
        call = about(
            ref,
            "logs",
            process=process,
            tail=tail,
            offset=offset,
            since=since,
            timestamps=timestamps or None,
            run=job_run,
        )
        result: dict[str, Any] = await self.send(call)
        return result

    async def credentials(self, ref: ResourceRef | str) -> dict[str, Any]:
        """The resource's cluster: ``engine``, ``address`` and what reaches it (a Dask
        cluster's TLS certificate and key, a Ray cluster's ``ray_token``)."""
        result: dict[str, Any] = await self.send(about(ref, "credentials"))
        return result

    async def cluster_security(self, ref: ResourceRef | str) -> Security | None:
        """What a ``distributed.Client`` needs to reach the resource's Dask scheduler:
        ``Client(address, security=hub.cluster_security(ref))`` (None: plain TCP).
        Needs ``distributed`` (``pip install 'titan[dask]'``)."""
        from service.client.security import cluster_security

        credentials = await self.credentials(ref)
        return cluster_security(credentials) if credentials.get("tls_cert") else None

    async def wait(
        self,
        ref: ResourceRef | str,
        until: set[str],
        timeout: float = 300,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 0.25,
        generation: int = 0,
    ) -> dict[str, Any]:
        """Poll until the resource's status is in ``until``; TitanClientError if it fails
        or ``timeout`` seconds pass.

        With ``generation``, wait until the reconciler has acted on that generation
        (what ``apply`` returned). ``on_change`` is called at every status change.
        """
        deadline = time.monotonic() + timeout
        seen: tuple[str, str] | None = None
        while True:
            resource = await self.get(ref)
            if (resource["status"], resource["status_reason"]) != seen:
                seen = (resource["status"], resource["status_reason"])
                if on_change is not None:
                    on_change(resource)
            if _finished(resource, until, generation):
                return resource
            if time.monotonic() > deadline:
                raise TitanClientError(f"{ref} is still {resource['status']} after {timeout:.0f}s")
            await asyncio.sleep(interval)

    async def wait_gone(self, ref: ResourceRef | str, timeout: float = 60) -> None:
        """Poll until the resource no longer exists (after ``delete``); TitanClientError
        if it still does after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self.get(ref)
            except NotFoundError:
                return
            await asyncio.sleep(0.25)
        raise TitanClientError(f"{ref} still exists after {timeout:.0f}s")
