"""Per-cluster credentials: only holders of them reach a cluster.

Each cluster gets its engine's credentials (Dask: a self-signed TLS
certificate and key, its own authority; Ray: an authentication token), made
at its first start and stored encrypted under the secrets key. Its processes
and attached workspaces and jobs get them as secret files (see
:meth:`service.engines.base.Engine.secret_files`). Its owner (and admins)
fetch them through the API to connect from elsewhere; the control plane uses
them for its own calls to the cluster (:class:`ClusterConnections`). With
``TITAN_DASK_TLS=false`` Dask schedulers speak plain TCP (bound to loopback or
the resource's own network) instead; Ray clusters always require their token.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.core.identity.access import Principal
from service.core.sharing.secrets import Vault
from service.core.workloads.dashboards import dashboard_path
from service.core.workloads.resources import ResourceService
from service.database.db import in_transaction
from service.database.models import ClusterCredential
from service.engines import engine_of
from service.engines.base import ClusterCalls, Engine
from service.errors import NotFound
from service.recipes.models import parse_recipe


def cluster_credentials(
    session: Session, vault: Vault, resource_id: str, engine: Engine
) -> dict[str, str]:
    """The cluster's credentials for ``engine``, made and stored at first use (and made
    anew for an engine the cluster did not run before)."""
    row = session.get(ClusterCredential, resource_id)
    stored: dict[str, str] = json.loads(vault.decrypt(row.ciphertext)) if row else {}
    if all(key in stored for key in engine.credential_keys):
        return stored
    stored.update(engine.new_credentials())
    ciphertext = vault.encrypt(json.dumps(stored))
    if row is None:
        session.add(ClusterCredential(resource_id=resource_id, ciphertext=ciphertext))
    else:
        row.ciphertext = ciphertext
    session.flush()
    return stored


class ClusterConnections:
    """Opens the control plane's calls to each cluster, with its credentials (loaded
    once per cluster and remembered: they never change)."""

    def __init__(
        self, sessions: sessionmaker[Session], vault: Vault, dask_tls: bool, size: int = 1000
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.dask_tls = dask_tls
        self.size = size
        self._known: dict[tuple[str, str], dict[str, str]] = {}

    async def calls(
        self, resource_id: str, engine: Engine, endpoints: dict[str, str]
    ) -> ClusterCalls:
        """The engine's calls to the cluster of ``resource_id`` serving ``endpoints``."""
        credentials: dict[str, str] = {}
        if engine.secured(self.dask_tls):
            key = (resource_id, engine.name)
            if key not in self._known:
                if len(self._known) >= self.size:
                    self._known.clear()  # bounded: deleted clusters leave entries behind
                self._known[key] = await in_transaction(
                    self.sessions, cluster_credentials, self.vault, resource_id, engine
                )
            credentials = self._known[key]
        # In a thread: Dask's TLS context writes the key to a file the first time.
        return await asyncio.to_thread(engine.calls, resource_id, endpoints, credentials)


class ClusterAccess:
    """Hands a cluster's credentials to who may use it: its owner (members of an owning
    group), admins, and the resource's own processes."""

    def __init__(self, resources: ResourceService, vault: Vault) -> None:
        self.resources = resources
        self.vault = vault

    def credentials(
        self, principal: Principal, type: str, name: str, owner: str | None
    ) -> dict[str, Any]:
        """``{"engine", "address", ...}`` and the engine's credentials of the resource's
        cluster (a Dask cluster: ``scheduler``, and ``tls_cert``/``tls_key`` unless
        TITAN_DASK_TLS is off; a Ray cluster: ``ray_token``)."""
        with self.resources.sessions.begin() as session:
            resource = self.resources.load(session, principal, type, name, owner)
            cluster = parse_recipe(resource.recipe).cluster
            if cluster is None:
                raise NotFound(f"{type} {name!r} runs no cluster")
            engine = engine_of(cluster.engine)
            head = next((p for p in resource.processes if p.name == engine.head), None)
            address = engine.address(dict(head.endpoints or {})) if head else None
            found: dict[str, Any] = {"engine": engine.name, "address": address}
            found.update(engine.client_view(address))
            if engine.secured(self.resources.settings.dask_tls):
                found.update(cluster_credentials(session, self.vault, resource.id, engine))
            return found

    def dashboard_upstream(
        self, resource_id: str, principal: Principal | None, ticket: str | None
    ) -> tuple[str, dict[str, str]]:
        """Where to relay a request for the resource's dashboard (the URL its path is
        appended to) and the headers to add, if the caller may see it (see
        ``ResourceService.dashboard_endpoint``)."""
        name, endpoint = self.resources.dashboard_endpoint(resource_id, principal, ticket)
        engine = engine_of(name)
        credentials: dict[str, str] = {}
        if engine.secured(self.resources.settings.dask_tls):
            with self.resources.sessions.begin() as session:
                credentials = cluster_credentials(session, self.vault, resource_id, engine)
        return engine.relay(endpoint, dashboard_path(resource_id), credentials)
