"""Tables the CLI prints: ``titan top`` and ``titan alerts`` (data in, rich table out)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

GiB = 1024**3


def top_view(resources: list[dict[str, Any]], now: float | None = None) -> RenderableType:
    """``titan top``: the hardware table and, where deployments serve, their front door's
    requests, errors and latency."""
    served = deployments_table(resources, now)
    return top_table(resources, now) if served is None else Group(top_table(resources, now), served)


def deployments_table(resources: list[dict[str, Any]], now: float | None = None) -> Table | None:
    """Each deployment's newest front door reading (requests and errors per second over
    the last report interval, mean and p95 latency, totals); None if there is none."""
    now = time.time() if now is None else now
    table = Table(
        "resource",
        "source",
        "req/s",
        "errors/s",
        "latency ms",
        "p95 ms",
        "requests",
        "errors",
        "age s",
        title="deployments",
    )
    for resource in resources:
        name = f"{resource['owner']}/{resource['type']}/{resource['name']}"
        for reading in resource["sources"]:
            if not reading["source"].startswith("deploy:"):
                continue
            values = reading["values"]
            table.add_row(
                name,
                "front door",
                _rate(values.get("requests_per_second")),
                _rate(values.get("errors_per_second")),
                _rate(values.get("latency_ms")),
                _rate(values.get("latency_p95_ms")),
                _number(values.get("requests_total")),
                _number(values.get("errors_total")),
                f"{now - reading['time']:.0f}",
            )
    return table if table.row_count else None


def top_table(resources: list[dict[str, Any]], now: float | None = None) -> Table:
    """Each running resource's GPUs and hosts: utilisation, memory, temperature, power."""
    now = time.time() if now is None else now
    table = Table(
        "resource",
        "process",
        "source",
        "util %",
        "memory GiB",
        "temp °C",
        "power W",
        "age s",
        title="titan top",
    )
    for resource in resources:
        name = f"{resource['owner']}/{resource['type']}/{resource['name']}"
        readings = [r for r in resource["sources"] if _shown(r["source"])]
        if not readings:
            table.add_row(name, "", "no samples yet", "", "", "", "", "")
        for reading in readings:
            table.add_row(
                name, reading["process"], *_columns(reading), f"{now - reading['time']:.0f}"
            )
            name = ""  # the resource's name once, on its first row
    return table


def _shown(source: str) -> bool:
    return source.startswith(("gpu:", "host:"))


def _columns(reading: dict[str, Any]) -> list[str]:
    values = reading["values"]
    if reading["source"].startswith("gpu:"):
        label = f"{reading['info'].get('model', 'GPU')} {reading['source'][4:12]}…"
        memory = _memory(values.get("gpu_memory_used_bytes"), values.get("gpu_memory_total_bytes"))
        return [
            label,
            _number(values.get("gpu_utilization_percent")),
            memory,
            _number(values.get("gpu_temperature_celsius")),
            _number(values.get("gpu_power_watts")),
        ]
    memory = _memory(values.get("process_memory_bytes"), values.get("host_memory_total_bytes"))
    return [
        f"host {reading['info'].get('host', '')} (CPU)",
        _number(values.get("process_cpu_percent", values.get("host_cpu_percent"))),
        memory,
        "",
        "",
    ]


def alerts_table(events: list[dict[str, Any]]) -> Table:
    """Alert events, newest first."""
    table = Table("when", "state", "rule", "resource", "source", "message", title="alerts")
    for event in events:
        table.add_row(
            event["at"][:19].replace("T", " "),
            event["state"],
            event["rule"],
            event.get("resource", ""),
            event["source"],
            event["message"],
        )
    return table


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _memory(used: float | None, total: float | None) -> str:
    if used is None:
        return ""
    return f"{used / GiB:.1f}" + (f" / {total / GiB:.0f}" if total else "")
