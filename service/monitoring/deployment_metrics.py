"""A deployment's requests, errors and latency through the front door, as samples.

The front door counts them (:class:`~service.core.workloads.serving.Counts`); every
report interval the counts since the last report are stored as one sample of the
deployment (source ``deploy:front_door``), so the telemetry API, ``titan top``
and ``/metrics`` show them like any other reading:

- ``requests_per_second``, ``errors_per_second`` over the interval;
- ``latency_ms`` (mean) and ``latency_p95_ms`` (from the latency buckets);
- ``requests_total``, ``errors_total`` since the control plane started.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.core.identity.access import Principal
from service.core.workloads.serving import BUCKETS, Counts
from service.monitoring.monitor import Monitor
from service.monitoring.samples import TelemetryBatch, WireSample

SOURCE = "deploy:front_door"


def values_between(seconds: float, before: Counts, now: Counts) -> dict[str, float]:
    """The sample's values for the ``seconds`` between counts ``before`` and ``now``."""
    requests = now.requests - before.requests
    values = {
        "requests_per_second": requests / seconds,
        "errors_per_second": (now.errors - before.errors) / seconds,
        "requests_total": float(now.requests),
        "errors_total": float(now.errors),
    }
    if requests:
        values["latency_ms"] = 1000 * (now.seconds - before.seconds) / requests
        counts = [b - a for a, b in zip(before.buckets, now.buckets, strict=True)]
        values["latency_p95_ms"] = 1000 * _quantile(counts, 0.95)
    return values


def _quantile(counts: list[int], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` (the largest finite bound for
    the last bucket)."""
    wanted, seen = q * sum(counts), 0
    for bound, count in zip(BUCKETS, counts, strict=True):
        seen += count
        if seen >= wanted:
            return bound if bound != float("inf") else BUCKETS[-2]
    return BUCKETS[-2]


def reporter(monitor: Monitor) -> Callable[[str, float, Counts, Counts], None]:
    """A report function for the health checker: stores the sample as the deployment's own."""

    def report(resource_id: str, seconds: float, before: Counts, now: Counts) -> None:
        sender = Principal(0, "front-door", is_admin=False, resource_id=resource_id)
        values = values_between(seconds, before, now)
        sample = WireSample(time=time.time(), source=SOURCE, values=values)
        monitor.ingest(sender, TelemetryBatch(process="front-door", samples=[sample]))

    return report
