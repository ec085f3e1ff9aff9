"""What runs where and how it is doing: nodes, telemetry, alerts, reclaims, usage, audit."""

from __future__ import annotations

import builtins
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from service.client.calls import API, Call
from service.client.resources import ResourceRef, about
from service.client.transport import Transport


def _kept(**params: Any) -> dict[str, Any]:
    """Query parameters without those left None, dates and times in ISO 8601."""
    return {
        k: v.isoformat() if isinstance(v, date | datetime) else v
        for k, v in params.items()
        if v is not None
    }


class Monitoring(Transport):
    """Nodes (``/api/v1/nodes``), telemetry, alerts and reclaims, usage and audit."""

    async def nodes(self) -> builtins.list[dict[str, Any]]:
        """Every node: capacity, allocations and who holds each GPU."""
        result: builtins.list[dict[str, Any]] = await self.send(Call("GET", f"{API}/nodes"))
        return result

    async def telemetry(
        self,
        ref: ResourceRef | str,
        metric: str,
        start: float | str | None = None,
        end: float | str | None = None,
        step: float | None = None,
        agg: str = "avg",
    ) -> dict[str, Any]:
        """One metric of a resource, a series per GPU or host, from ``start`` to ``end``
        (default: the last 15 minutes), ``agg`` per ``step``. A time is epoch seconds or
        text the server reads: ISO 8601 ("2026-12-07T03:00:00Z"), "-1h", "-30m", "now".
        NotFoundError naming the known metrics for a name neither standard nor stored."""
        window = {"from": start, "to": end}
        call = about(ref, "telemetry", metric=metric, step=step, agg=agg, **window)
        result: dict[str, Any] = await self.send(call)
        return result

    async def metric_names(self) -> builtins.list[dict[str, Any]]:
        """Metrics a query may ask for, by name: ``{name, description, standard}`` for
        the samplers' standard ones and any other stored for a resource you may see."""
        call = Call("GET", f"{API}/telemetry/metrics")
        result: builtins.list[dict[str, Any]] = await self.send(call)
        return result

    async def current(self) -> builtins.list[dict[str, Any]]:
        """Running resources with the newest reading of each GPU and host."""
        call = Call("GET", f"{API}/telemetry/current")
        result: builtins.list[dict[str, Any]] = await self.send(call)
        return result

    async def alerts(
        self, state: str | None = None, limit: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Alert events, newest first (``state``: firing or resolved; at most ``limit``,
        default 100)."""
        call = Call("GET", f"{API}/alerts", _kept(state=state or None, limit=limit))
        result: builtins.list[dict[str, Any]] = await self.send(call)
        return result

    async def alert_rules(self) -> builtins.list[dict[str, Any]]:
        """Every alert rule, from settings and from the API."""
        result: builtins.list[dict[str, Any]] = await self.send(Call("GET", f"{API}/alerts/rules"))
        return result

    async def put_alert_rule(
        self,
        name: str,
        metric: str,
        comparison: str = ">",
        threshold: float = 0.0,
        for_seconds: float = 0.0,
    ) -> dict[str, Any]:
        """Add or replace the rule ``name``: fire when ``metric comparison threshold``
        holds for ``for_seconds`` (admins)."""
        body = {
            "metric": metric,
            "comparison": comparison,
            "threshold": threshold,
            "for_seconds": for_seconds,
        }
        path = f"{API}/alerts/rules/{quote(name, safe='')}"
        result: dict[str, Any] = await self.send(Call("PUT", path, body=body))
        return result

    async def delete_alert_rule(self, name: str) -> None:
        """Remove an alert rule added through the API (admins)."""
        await self.send(Call("DELETE", f"{API}/alerts/rules/{quote(name, safe='')}"))

    async def reclaims(self) -> dict[str, Any]:
        """Resources stopped for being idle, and the GPU-seconds that gave back."""
        result: dict[str, Any] = await self.send(Call("GET", f"{API}/reclaims"))
        return result

    async def usage(
        self,
        start: date | str | None = None,
        end: date | str | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """GPU-hours and CPU-hours per owner and UTC day, from day ``start`` to ``end``
        (default: the last 7 days); ``days`` lists them."""
        call = Call("GET", f"{API}/usage", _kept(**{"from": start, "to": end, "owner": owner}))
        result: dict[str, Any] = await self.send(call)
        return result

    async def audit(
        self,
        actor: str | None = None,
        since: datetime | str | None = None,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """Mutating API calls, newest first: who, what, when, result (admins)."""
        call = Call("GET", f"{API}/audit", _kept(actor=actor, since=since, limit=limit))
        result: builtins.list[dict[str, Any]] = await self.send(call)
        return result
