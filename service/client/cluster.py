"""``TitanCluster``: a Titan Dask cluster as a ``distributed.deploy.Cluster``.

``Client(TitanCluster(n_workers=2))`` works as with LocalCluster: the cluster
is a Titan resource (created here, or found with ``from_name``/``attached``),
``scale(n)`` edits its recipe and the control plane converges it, and
``close()`` deletes what this object created. Every operation has a sync and
an async form (``asynchronous=True``, then ``await``/``async with``).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import uuid
from collections.abc import Generator
from typing import Any

from distributed.core import Status, rpc
from distributed.deploy.cluster import Cluster
from distributed.security import Security
from tornado.ioloop import PeriodicCallback

from service.client.errors import TitanClientError
from service.client.hub import UP, AsyncHub, ResourceRef

logger = logging.getLogger(__name__)
# How often the resource (its planned and running workers) is read again.
REFRESH_SECONDS = 2.0


class TitanCluster(Cluster):
    """A Dask cluster run by Titan.

    ``TitanCluster(n_workers=2, worker_memory="2GiB")`` creates a ``cluster``
    resource and waits until it runs; ``shutdown_on_close`` (default: True for
    clusters created here) deletes it on ``close()``.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        n_workers: int = 1,
        worker_threads: int = 1,
        worker_memory: str | None = None,
        worker_gpus: int = 0,
        image: str | None = None,
        adaptive: dict[str, int] | None = None,
        environment: dict[str, str] | None = None,
        shutdown_on_close: bool = True,
        url: str | None = None,
        token: str | None = None,
        owner: str | None = None,
        timeout: float = 300,
        asynchronous: bool = False,
        loop: Any = None,
    ) -> None:
        ref = ResourceRef("cluster", name or f"dask-{uuid.uuid4().hex[:8]}", owner)
        worker: dict[str, Any] = {"nthreads": worker_threads, "gpu": worker_gpus}
        if worker_memory is not None:
            worker["memory"] = worker_memory
        spec: dict[str, Any] = {"n_workers": n_workers, "worker": worker}
        if image is not None:
            spec["image"] = image
        if adaptive is not None:
            spec["adaptive"] = adaptive
        if environment:
            spec["environment_variables"] = environment
        recipe: dict[str, Any] = {"type": "cluster", "name": ref.name, "spec": spec}
        if owner is not None:
            recipe["owner"] = owner
        self.adaptive_bounds: dict[str, int] | None = adaptive  # as the server carries them out
        self._connect(
            ref, recipe, AsyncHub(url, token), timeout, shutdown_on_close, None, asynchronous, loop
        )

    def _connect(
        self,
        ref: ResourceRef,
        recipe: dict[str, Any] | None,
        hub: AsyncHub,
        timeout: float,
        shutdown_on_close: bool,
        scheduler_address: str | None,
        asynchronous: bool,
        loop: Any,
    ) -> None:
        """Set the object up and, unless asynchronous, start it: apply ``recipe`` (None:
        the resource exists) and connect to its scheduler."""
        self.hub = hub
        self.ref = ref
        self.timeout = timeout
        self.shutdown_on_close = shutdown_on_close
        self._recipe = recipe
        self._scheduler_address = scheduler_address
        self.resource: dict[str, Any] = {}
        if recipe is None:
            self.adaptive_bounds = None  # read from the recipe on start
        super().__init__(asynchronous=asynchronous, loop=loop, name=ref.name)
        self.periodic_callbacks["titan-resource"] = PeriodicCallback(
            self._refresh, REFRESH_SECONDS * 1000
        )
        if not self.called_from_running_loop:
            self._loop_runner.start()
            try:
                self.sync(self._start)
            except BaseException:
                self._loop_runner.stop()
                raise

    @classmethod
    def from_name(
        cls,
        name: str,
        *,
        url: str | None = None,
        token: str | None = None,
        owner: str | None = None,
        asynchronous: bool = False,
        shutdown_on_close: bool = False,
        timeout: float = 300,
    ) -> TitanCluster:
        """Connect to the existing cluster ``name``; closing it leaves it running
        (unless ``shutdown_on_close``)."""
        cluster = cls.__new__(cls)
        ref = ResourceRef("cluster", name, owner)
        hub = AsyncHub(url, token)
        cluster._connect(ref, None, hub, timeout, shutdown_on_close, None, asynchronous, None)
        return cluster

    @classmethod
    def attached(cls, asynchronous: bool = False, timeout: float = 300) -> TitanCluster:
        """The cluster of the workspace or job this code runs in (from its environment);
        closing it leaves it running."""
        resource = os.environ.get("TITAN_RESOURCE", "")
        owner, _, ref = resource.partition("/")
        if not ref or not os.environ.get("DASK_SCHEDULER_ADDRESS"):
            raise TitanClientError(
                "no attached cluster: TITAN_RESOURCE and DASK_SCHEDULER_ADDRESS are set only "
                "inside a Titan workspace or job that has a dask_cluster"
            )
        cluster = cls.__new__(cls)
        # How this process reaches its scheduler (in a container: by name on its network).
        address = os.environ["DASK_SCHEDULER_ADDRESS"]
        target = ResourceRef.parse(ref, owner)
        hub = AsyncHub()
        cluster._connect(target, None, hub, timeout, False, address, asynchronous, None)
        return cluster

    # -- lifecycle ----------------------------------------------------------------------

    async def _start(self) -> None:
        while self.status == Status.starting:
            await asyncio.sleep(0.01)
        if self.status == Status.running:
            return
        self.status = Status.starting
        try:
            generation = 0
            if self._recipe is not None:
                applied = await self.hub.apply(self._recipe)
                generation = applied["resource"]["generation"]
                self.ref = ResourceRef(self.ref.type, self.ref.name, applied["resource"]["owner"])
            # A degraded cluster serves (its scheduler runs while a worker is replaced).
            self.resource = await self.hub.wait(
                self.ref, set(UP), timeout=self.timeout, generation=generation
            )
            if self._recipe is None:
                spec = (await self.hub.recipe(self.ref))["spec"]
                dask = spec if self.ref.type == "cluster" else spec.get("dask_cluster") or {}
                self.adaptive_bounds = dask.get("adaptive")
            address = self._scheduler_address or self.resource["endpoints"]["scheduler"]
            # The cluster's certificate (TLS clusters); Client(cluster) presents it too.
            self.security = await self.hub.cluster_security(self.ref) or Security()
            connection = self.security.get_connection_args("client")
            self.scheduler_comm = rpc(address, connection_args=connection)
            await super()._start()
        except BaseException:
            self.status = Status.failed
            await self._close()
            raise

    def __await__(self) -> Generator[Any, Any, TitanCluster]:
        async def start() -> TitanCluster:
            if self.status == Status.created:
                await self._start()
            return self

        return start().__await__()

    async def _close(self) -> None:
        if self.status == Status.closed:
            return
        await super()._close()
        try:
            if self.shutdown_on_close and self.resource:
                await self.hub.delete(self.ref)
                await self.hub.wait_gone(self.ref, timeout=self.timeout)
        finally:
            await self.hub.aclose()

    def close(self, timeout: float | None = None) -> Any:
        """Disconnect, and delete the cluster if this object owns it."""
        awaitable = super().close(timeout)
        if not self.asynchronous:
            self._loop_runner.stop()
        return awaitable

    # -- scaling --------------------------------------------------------------------------

    def scale(self, n: int) -> Any:
        """Ask the control plane for ``n`` workers; this ends adaptive scaling.

        Returns an awaitable if asynchronous.
        """
        self.adaptive_bounds = None
        return self.sync(self._change_dask, {"n_workers": n}, ["adaptive"])

    # Adaptivity runs in the control plane, not in a client-side ``Adaptive`` object.
    def adapt(  # type: ignore[override]
        self, minimum: int = 0, maximum: int | None = None, **kwargs: Any
    ) -> Any:
        """Let the control plane scale between ``minimum`` and ``maximum`` workers.

        Titan carries this out on the server from the scheduler's adaptive
        target (it goes on after this client disconnects), retiring idle workers
        only. Returns an awaitable if asynchronous.
        """
        if kwargs:
            raise TypeError(f"TitanCluster.adapt takes minimum and maximum, not {sorted(kwargs)}")
        if maximum is None:
            raise TitanClientError("adapt needs maximum=: the most workers this cluster may have")
        bounds = {"minimum": int(minimum), "maximum": int(maximum)}
        self.adaptive_bounds = bounds
        return self.sync(self._change_dask, {"adaptive": bounds}, [])

    async def _change_dask(self, values: dict[str, Any], remove: list[str]) -> None:
        """Edit the recipe's Dask settings; a concurrent apply is never lost (Hub.edit)."""

        def change(recipe: dict[str, Any]) -> None:
            spec = recipe["spec"]
            dask = spec if self.ref.type == "cluster" else spec.get("dask_cluster")
            if dask is None:
                raise TitanClientError(f"{self.ref} has no Dask cluster to scale")
            dask.update(values)
            for key in remove:
                dask.pop(key, None)

        await self.hub.edit(self.ref, change)
        await self._refresh()

    # -- workers: what distributed's Cluster users read ---------------------------------------

    async def _refresh(self) -> None:
        """Read the resource again (its planned and running workers); a failed read
        keeps the last one."""
        try:
            self.resource = await self.hub.get(self.ref)
        except TitanClientError as exc:
            logger.debug("cluster %s: could not read the resource: %s", self.ref, exc)

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        """The worker processes the control plane runs for this cluster, by name
        (``worker-0``...): state, node, GPUs, start time (refreshed every few seconds)."""
        return {
            process["name"]: process
            for process in self.resource.get("processes", [])
            if process.get("role") == "worker" and process.get("state") != "exited"
        }

    @property
    def plan(self) -> set[str]:
        """The names of the workers the control plane means this cluster to have."""
        planned = self.resource.get("worker_names")
        return set(planned) if planned is not None else set(self.workers)

    @property
    def requested(self) -> set[str]:
        """The names of the workers the control plane has started (some may still be
        connecting: ``observed`` names those the scheduler knows)."""
        return set(self.workers)

    # -- display ----------------------------------------------------------------------------

    def _scaling_status(self) -> str:
        """The widget's scaling tab: adaptivity runs on the server, not in this client."""
        workers = len(self.scheduler_info.get("workers", {}))
        bounds = self.adaptive_bounds
        mode = (
            f"Adaptive, by the Titan server ({bounds['minimum']} to {bounds['maximum']} workers)"
            if bounds
            else "Manual"
        )
        return (
            '<table><tr><td style="text-align: left;">'
            f"Scaling mode: {html.escape(mode)}</td></tr>"
            f'<tr><td style="text-align: left;">Workers: {workers}</td></tr></table>'
        )

    @property
    def dashboard_link(self) -> str:
        """The dashboard through the control plane (the link carries its ticket)."""
        link = self.resource.get("endpoints", {}).get("dashboard")
        return str(link) if link else str(super().dashboard_link)

    @property
    def _cluster_class_name(self) -> str:
        return f"TitanCluster[{self.ref}]"
