"""Cluster engines, by the name recipes give in ``spec.engine``."""

from __future__ import annotations

from service.engines.base import Engine, Launch, Place, PlannedProcess
from service.engines.dask import DaskEngine
from service.engines.ray import RayEngine

ENGINES: dict[str, Engine] = {engine.name: engine for engine in (DaskEngine(), RayEngine())}


def engine_of(name: str) -> Engine:
    """The engine called ``name`` (recipes are validated, so it exists)."""
    return ENGINES[name]


__all__ = ["ENGINES", "Engine", "Launch", "Place", "PlannedProcess", "engine_of"]
