"""Calls the control plane makes to a Ray cluster (the Ray engine's ClusterCalls).

Through the head's dashboard with the cluster's token: how many worker
nodes the work asks for (those running tasks or actors, plus enough for the
CPUs that waiting tasks ask for), which nodes are connected, which are idle.
Retiring a node needs nothing beforehand: stopping its ``ray start`` drains it
(Ray moves no data; lost objects are rebuilt from their lineage).
"""

from __future__ import annotations

import asyncio
from typing import Any

from workers.ray_activity import RayState, wanted_nodes


class RayCalls:
    """The calls autoscaling needs, each in a thread (the state API client blocks)."""

    def __init__(self, dashboard: str, token: str, timeout: float = 10.0) -> None:
        self.dashboard = dashboard
        self.token = token
        self.timeout = timeout
        self._state: RayState | None = None

    async def __aenter__(self) -> RayCalls:
        self._state = RayState(self.dashboard, self.token, self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    @property
    def state(self) -> RayState:
        if self._state is None:
            raise RuntimeError("use `async with RayCalls(...) as cluster:`")
        return self._state

    async def _workers(self) -> dict[str, dict[str, Any]]:
        nodes = await asyncio.to_thread(self.state.nodes)
        return {name: node for name, node in nodes.items() if not node.get("is_head_node")}

    async def adaptive_target(self) -> int:
        """Worker nodes running tasks or actors, plus enough for the waiting CPUs."""
        workers = await self._workers()
        busy = await asyncio.to_thread(self.state.busy_nodes)
        pending = await asyncio.to_thread(self.state.pending_cpus)
        cpus = [float((n.get("resources_total") or {}).get("CPU", 1)) for n in workers.values()]
        working = sum(1 for node in workers.values() if busy[str(node.get("node_id"))])
        return wanted_nodes(working, pending, max(cpus, default=1.0))

    async def workers(self) -> dict[str, str]:
        """Each alive worker node's name, ``running``."""
        return {name: "running" for name in await self._workers()}

    async def idle_workers(self, keep: int) -> list[str]:
        """Alive worker nodes with no running task or live actor, as many as may go while
        ``keep`` stay."""
        workers = await self._workers()
        busy = await asyncio.to_thread(self.state.busy_nodes)
        idle = sorted(n for n, node in workers.items() if not busy[str(node.get("node_id"))])
        return idle[: max(0, len(workers) - keep)]

    async def retire(self, names: list[str], timeout: float = 60.0) -> list[str]:
        """Nothing to hand over first: ``names``."""
        return list(names)
