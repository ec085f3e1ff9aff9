"""Calls the control plane makes to a Dask cluster's scheduler (the Dask engine's ClusterCalls).

The scheduler knows what the cluster needs (its adaptive target, from the
tasks it holds) and which workers are idle; Titan asks, decides within the
recipe's bounds, and starts or stops the processes itself. Every call has a
deadline, so an unresponsive scheduler delays one decision, never the plane.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distributed.core import rpc


class SchedulerCalls:
    """The few scheduler operations autoscaling needs, each bounded by ``timeout``.

    Use as ``async with SchedulerCalls(address) as scheduler:``; the calls made
    inside share the connections to the scheduler.
    """

    def __init__(
        self,
        address: str,
        connection_args: dict[str, Any] | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
    ) -> None:
        self.address = address
        self.connection_args = connection_args or {}  # TLS: see cluster_tls.SchedulerTLS
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._remote: rpc | None = None

    async def __aenter__(self) -> SchedulerCalls:
        self._remote = rpc(
            self.address, timeout=self.connect_timeout, connection_args=self.connection_args
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._remote is not None:
            await self._remote.close_rpc()
            self._remote = None

    async def _call(self, operation: str, timeout: float | None = None, **kwargs: Any) -> Any:
        if self._remote is None:
            raise RuntimeError("use `async with SchedulerCalls(address) as scheduler:`")
        method = getattr(self._remote, operation)
        return await asyncio.wait_for(method(**kwargs), timeout or self.timeout)

    async def adaptive_target(self) -> int:
        """How many workers the scheduler's current work asks for."""
        return int(await self._call("adaptive_target"))

    async def workers(self) -> dict[str, str]:
        """Each connected worker's name and its status (``running``, ``closing_gracefully``...)."""
        identity = await self._call("identity")
        return {str(w["name"]): str(w["status"]) for w in identity["workers"].values()}

    async def idle_workers(self, keep: int) -> list[str]:
        """Names of workers that can go while ``keep`` stay: none of them runs a task.

        Asked without a count, the scheduler stops at the first busy worker and
        keeps enough memory for the data it holds (twice its size).
        """
        names = await self._call("workers_to_close", minimum=keep, attribute="name")
        return [str(name) for name in names]

    async def retire(self, names: list[str], timeout: float = 60.0) -> list[str]:
        """Move the data held only by workers ``names`` to others; the names retired.

        The workers stay up but take no new tasks; the caller stops them. A
        worker whose data could not be moved is not retired (and not returned).
        """
        retired = await self._call(
            "retire_workers", timeout, names=names, close_workers=False, remove=False
        )
        return [str(info["name"]) for info in retired.values()]
