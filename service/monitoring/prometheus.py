"""``/metrics`` in the Prometheus text format.

The newest reading of every GPU and host becomes a gauge ``titan_<metric>``
labelled by resource, owner, type, name, source, process and GPU. Admins
also get the control plane's own metrics: resources by status, the
reconcile queue, reconcile and API latency, samples ingested, and each
deployment's requests by outcome and their latency through the front door.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from service.asgi import StatusWatch

LABELS = ["resource", "owner", "type", "name", "source", "process", "gpu"]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ControlPlaneMetrics:
    """The control plane's own instruments, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.api_seconds = Histogram(
            "titan_api_request_seconds",
            "API request latency by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "titan_reconcile_seconds",
            "time one reconcile pass of one resource took",
            registry=self.registry,
        )
        self.deployment_requests = Counter(
            "titan_deployment_requests",
            "requests through the front door to a deployment (owner/name), by outcome "
            "('ok', or 'error': answered 5xx or not at all)",
            ["deployment", "outcome"],
            registry=self.registry,
        )
        self.deployment_seconds = Histogram(
            "titan_deployment_request_seconds",
            "latency of requests through the front door to a deployment (owner/name)",
            ["deployment"],
            registry=self.registry,
        )

    def observe_deployment(self, deployment: str, seconds: float, error: bool) -> None:
        """Count one request to ``deployment`` (owner/name) that took ``seconds``."""
        self.deployment_requests.labels(deployment, "error" if error else "ok").inc()
        self.deployment_seconds.labels(deployment).observe(seconds)


class _Snapshot(Collector):
    """Gauges built from a snapshot taken at scrape time."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def telemetry_families(resources: list[dict[str, Any]]) -> list[Metric]:
    """One gauge family per metric from ``Monitor.current``-shaped resources."""
    families: dict[str, GaugeMetricFamily] = {}
    for resource in resources:
        key = f"{resource['owner']}/{resource['type']}/{resource['name']}"
        for reading in resource["sources"]:
            labels = [
                key,
                resource["owner"],
                resource["type"],
                resource["name"],
                reading["source"],
                reading["process"],
                reading["info"].get("gpu", ""),
            ]
            for metric, value in reading["values"].items():
                family = families.get(metric)
                if family is None:
                    family = families[metric] = GaugeMetricFamily(
                        f"titan_{metric}", f"newest {metric} reading", labels=LABELS
                    )
                family.add_metric(labels, value)
    return list(families.values())


def control_plane_families(
    counts: list[tuple[str, str, int]],
    queue_depth: int,
    ingested: int,
    dropped: dict[tuple[str, str], int],
) -> list[Metric]:
    """Resources by status, reconcile queue depth, samples ingested, and samples the
    senders (``(resource, process)``) lost to a full buffer."""
    resources = GaugeMetricFamily(
        "titan_resources", "resources by type and status", labels=["type", "status"]
    )
    for kind, status, count in counts:
        resources.add_metric([kind, status], count)
    queue = GaugeMetricFamily(
        "titan_reconcile_queue_depth", "resources waiting for or in a reconcile pass"
    )
    queue.add_metric([], queue_depth)
    samples = CounterMetricFamily(
        "titan_telemetry_samples_ingested", "telemetry samples stored since the server started"
    )
    samples.add_metric([], ingested)
    lost = CounterMetricFamily(
        "titan_telemetry_dropped_samples",
        "samples a process dropped while the control plane was away (its own count)",
        labels=["resource", "process"],
    )
    for (resource, process), count in sorted(dropped.items()):
        lost.add_metric([resource, process], count)
    return [resources, queue, samples, lost]


def exposition(families: list[Metric], own: ControlPlaneMetrics | None) -> bytes:
    """The text Prometheus scrapes: ``families``, then ``own`` instruments if given."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    text = generate_latest(registry)
    return text + (generate_latest(own.registry) if own is not None else b"")


class ApiTimer:
    """ASGI middleware observing each HTTP request's latency by route template."""

    def __init__(self, app: ASGIApp, metrics: ControlPlaneMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        watch = StatusWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.api_seconds.labels(scope["method"], path, str(watch.status)).observe(
                time.perf_counter() - started
            )
