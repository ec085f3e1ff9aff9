"""`titan top`'s tables: hardware readings, and deployments' front door readings."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from service.cli_tables import deployments_table, top_view

NOW = 1_800_000_000.0


def resource(name: str, type_: str, *sources: dict[str, Any]) -> dict[str, Any]:
    return {"owner": "ann", "type": type_, "name": name, "sources": list(sources)}


def reading(source: str, process: str, **values: float) -> dict[str, Any]:
    return {"source": source, "process": process, "time": NOW - 3, "values": values, "info": {}}


def shown(renderable: Any) -> str:
    console = Console(width=200, file=io.StringIO())
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_deployment_shows_its_front_door_requests_errors_and_latency() -> None:
    served = resource(
        "predict",
        "deployment",
        reading("host:replica-1a2b3c4d-0", "replica-1a2b3c4d-0", host_cpu_percent=12.0),
        reading(
            "deploy:front_door",
            "",
            requests_per_second=41.25,
            errors_per_second=0.5,
            latency_ms=3.21,
            latency_p95_ms=7.5,
            requests_total=1234,
            errors_total=6,
        ),
    )
    text = shown(top_view([served], NOW))
    assert "replica-1a2b3c4d-0" in text  # the hardware table still lists the replica
    [row] = [line for line in text.splitlines() if "front door" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == [
        "ann/deployment/predict",
        "front door",
        "41.2",
        "0.5",
        "3.2",
        "7.5",
        "1234",
        "6",
        "3",
    ]


def test_an_interval_without_requests_has_no_latency_and_no_deployment_no_table() -> None:
    quiet = resource(
        "predict",
        "deployment",
        reading(
            "deploy:front_door",
            "",
            requests_per_second=0,
            errors_per_second=0,
            requests_total=10,
            errors_total=0,
        ),
    )
    [row] = [line for line in shown(top_view([quiet], NOW)).splitlines() if "front door" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[2:8] == ["0.0", "0.0", "", "", "10", "0"]
    cluster = resource("c", "cluster", reading("host:worker-0", "worker-0", host_cpu_percent=5.0))
    assert deployments_table([cluster], NOW) is None
    assert "deployments" not in shown(top_view([cluster], NOW))
