"""What a Ray cluster is doing, read from its head's dashboard (Ray's state API).

:class:`RayState` asks the dashboard with the cluster's token (from
``RAY_AUTH_TOKEN_PATH``, or given): which nodes are alive and which Titan
process each is (its ``titan-node:<name>`` resource), which tasks run and
actors live on which node, how many jobs run, and the resources tasks wait
for. :class:`RayReader` turns that into samples, so idle detection sees a
Ray cluster at work as it sees a Dask one; the control plane's autoscaler
asks the same questions (service/engines/ray_calls.py).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from workers.telemetry import Sample

NODE_RESOURCE = "titan-node:"  # each node's resource naming its Titan process
LIMIT = 10_000  # the most rows one state query returns


def cluster_token() -> str:
    """The cluster's token, from the file Titan hands its processes."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("RAY_AUTH_TOKEN", "")


class RayState:
    """Questions to one Ray cluster's dashboard; every call bounded by ``timeout``."""

    def __init__(self, dashboard: str, token: str | None = None, timeout: float = 10.0) -> None:
        secret = cluster_token() if token is None else token
        self.client = httpx.Client(
            base_url=dashboard.rstrip("/"),
            headers={"Authorization": f"Bearer {secret}"},
            timeout=timeout,
        )

    def close(self) -> None:
        """Close the connections."""
        self.client.close()

    def _get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params).raise_for_status().json()

    def _listed(self, kind: str, state: str) -> list[dict[str, Any]]:
        answer = self._get(
            f"/api/v0/{kind}",
            filter_keys="state",
            filter_predicates="=",
            filter_values=state,
            limit=LIMIT,
            detail=1,
        )
        return list(answer["data"]["result"]["result"])

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Alive nodes by their Titan process name (the head included)."""
        found = {}
        for node in self._listed("nodes", "ALIVE"):
            resources = node.get("resources_total") or {}
            names = [k[len(NODE_RESOURCE) :] for k in resources if k.startswith(NODE_RESOURCE)]
            if names:
                found[names[0]] = node
        return found

    def busy_nodes(self) -> Counter[str]:
        """How many running tasks and live actors each node id has."""
        counts: Counter[str] = Counter()
        for kind, state in (("tasks", "RUNNING"), ("actors", "ALIVE")):
            for row in self._listed(kind, state):
                counts[str(row.get("node_id") or "")] += 1
        return counts

    def activity(self) -> dict[str, float]:
        """Running tasks, live actors and running jobs, as sample values."""
        tasks = len(self._listed("tasks", "RUNNING"))
        actors = len(self._listed("actors", "ALIVE"))
        jobs = self._get("/api/jobs/")
        running = sum(1 for job in jobs if job.get("status") in ("PENDING", "RUNNING"))
        return {
            "ray_tasks_running": float(tasks),
            "ray_actors_alive": float(actors),
            "ray_jobs_running": float(running),
            "ray_nodes_alive": float(len(self.nodes())),
        }

    def pending_cpus(self) -> float:
        """CPUs that waiting tasks and actors ask for and no node has free."""
        answer = self._get("/api/cluster_status")
        report = (answer["data"].get("clusterStatus") or {}).get("loadMetricsReport") or {}
        total = 0.0
        for shape, count in report.get("resourceDemand") or []:
            total += float(shape.get("CPU", 0)) * float(count)
        return total


def wanted_nodes(busy: int, pending_cpus: float, cpus_per_node: float) -> int:
    """Worker nodes the work asks for: those busy now, and enough for what waits."""
    return busy + math.ceil(pending_cpus / max(cpus_per_node, 1.0))


class RayReader:
    """Samples the Ray cluster's activity (on its head, next to the dashboard).

    Ray's state API asks every node, and on a small machine a 1 Hz question
    slows the work it watches: the activity is asked at most every
    ``every`` seconds, and repeated in the samples between.
    """

    def __init__(self, dashboard: str, every: float = 5.0) -> None:
        self.state = RayState(dashboard)
        self.every = every
        self._last: tuple[float, dict[str, float]] | None = None

    def read(self, now: float) -> list[Sample]:
        """One ``ray`` sample: tasks running, actors alive, jobs running, nodes alive."""
        if self._last is None or now - self._last[0] >= self.every:
            self._last = (now, self.state.activity())
        return [Sample(now, "ray", dict(self._last[1]))]
