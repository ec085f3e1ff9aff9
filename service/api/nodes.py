"""Nodes: what each machine offers and who holds what."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.answers.monitoring import NodeAnswer
from service.api.deps import CurrentPrincipal, TitanDep
from service.core.capacity.ledger import node_report
from service.core.identity.access import require_user

router = APIRouter(prefix="/api/v1", tags=["nodes"])


@router.get("/nodes", response_model=list[NodeAnswer])
def list_nodes(titan: TitanDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Every node: CPUs, memory, GPUs (with their holders), what it promises (capacity times
    the overcommit) and what is allocated."""
    require_user(principal)
    with titan.resources.sessions() as session:
        return node_report(session, titan.resources.overcommit)
