"""What a recipe change would do: field changes and process starts/restarts/stops."""

from __future__ import annotations

from typing import Any

from service.engines.base import PlannedProcess


def field_changes(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """Every leaf that differs between two recipe documents, by JSON path."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(old) | set(new)):
            child = f"{path}.{key}" if path else key
            changes += field_changes(old.get(key), new.get(key), child)
        return changes
    if old == new:
        return []
    return [{"path": path, "old": old, "new": new}]


def process_changes(
    old: dict[str, PlannedProcess], new: dict[str, PlannedProcess]
) -> dict[str, list[str]]:
    """Which processes would start, restart, stop or stay, going from ``old`` to ``new``.

    A restarted cluster head (a Dask scheduler, a Ray head) restarts everything
    attached to it, since those processes hold its address.
    """
    start = [name for name in new if name not in old]
    stop = [name for name in old if name not in new]
    restart = [n for n in new if n in old and new[n].spec_hash != old[n].spec_hash]
    if any(new[n].head for n in restart):
        restart += [n for n in new if n in old and new[n].attached and n not in restart]
    unchanged = [name for name in new if name in old and name not in restart]
    return {"start": start, "restart": restart, "stop": stop, "unchanged": unchanged}
