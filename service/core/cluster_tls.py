"""Per-cluster TLS: only holders of the cluster's certificate reach its Dask scheduler.

Each resource that runs Dask gets one self-signed certificate (its own
authority) and key, made at its first start and stored encrypted under the
secrets key. Its scheduler, workers and attached main process get them as
secret files, and the entrypoint points Dask's TLS settings at them, so the
scheduler accepts only TLS connections presenting that certificate. Its
owner (and admins) fetch them through the API to connect from elsewhere;
the control plane uses them for its own calls to the scheduler. With
``TITAN_DASK_TLS=false`` schedulers speak plain TCP (bound to loopback or
the resource's own network) instead.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from distributed.security import Security
from sqlalchemy.orm import Session, sessionmaker

from service.client.security import cluster_security
from service.core.access import Principal
from service.core.resources import ResourceService
from service.core.secrets import Vault
from service.errors import NotFound
from service.recipes.models import parse_recipe
from service.store.db import in_transaction
from service.store.models import ClusterCredential
from workers.entrypoint import TLS_CERT_FILE, TLS_KEY_FILE


def cluster_credentials(session: Session, vault: Vault, resource_id: str) -> dict[str, str]:
    """The cluster's ``{"tls_cert", "tls_key"}`` (PEM), made and stored at first use."""
    row = session.get(ClusterCredential, resource_id)
    if row is not None:
        stored: dict[str, str] = json.loads(vault.decrypt(row.ciphertext))
        return stored
    made = Security.temporary()
    credentials = {"tls_cert": str(made.tls_ca_file), "tls_key": str(made.tls_scheduler_key)}
    session.add(
        ClusterCredential(
            resource_id=resource_id, ciphertext=vault.encrypt(json.dumps(credentials))
        )
    )
    session.flush()
    return credentials


def tls_files(credentials: dict[str, str]) -> dict[str, str]:
    """The secret files a Dask process of the cluster gets."""
    return {TLS_CERT_FILE: credentials["tls_cert"], TLS_KEY_FILE: credentials["tls_key"]}


class SchedulerTLS:
    """What the control plane presents to each cluster's scheduler: connection arguments
    made once per cluster and remembered (a cluster's certificate never changes, and
    building an SSL context from it writes the key to a temporary file)."""

    def __init__(
        self, sessions: sessionmaker[Session], vault: Vault, enabled: bool, size: int = 1000
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.enabled = enabled
        self.size = size
        self._known: dict[str, dict[str, Any]] = {}

    async def connection_args(self, resource_id: str) -> dict[str, Any]:
        """``rpc`` connection arguments for the cluster of ``resource_id`` ({} without TLS)."""
        if not self.enabled:
            return {}
        if resource_id in self._known:
            return self._known[resource_id]
        credentials = await in_transaction(
            self.sessions, cluster_credentials, self.vault, resource_id
        )
        security = cluster_security(credentials)
        made: dict[str, Any] = await asyncio.to_thread(security.get_connection_args, "client")
        if len(self._known) >= self.size:
            self._known.clear()  # bounded: deleted clusters leave entries behind
        self._known[resource_id] = made
        return made


def uses_tls(enabled: bool, role: str, needs_scheduler: bool) -> bool:
    """Whether a process of a cluster speaks TLS to its scheduler."""
    return enabled and (role in ("scheduler", "worker") or needs_scheduler)


class ClusterAccess:
    """Hands a cluster's credentials to who may use it: its owner (members of an owning
    group), admins, and the resource's own processes."""

    def __init__(self, resources: ResourceService, vault: Vault) -> None:
        self.resources = resources
        self.vault = vault

    def credentials(
        self, principal: Principal, type: str, name: str, owner: str | None
    ) -> dict[str, Any]:
        """``{"scheduler", "tls_cert", "tls_key"}`` of the resource's Dask cluster
        (no certificate where TITAN_DASK_TLS is off)."""
        with self.resources.sessions.begin() as session:
            resource = self.resources.load(session, principal, type, name, owner)
            if parse_recipe(resource.recipe).dask is None:
                raise NotFound(f"{type} {name!r} runs no Dask cluster")
            address = next(
                (p.scheduler_address for p in resource.processes if p.scheduler_address), None
            )
            found: dict[str, Any] = {"scheduler": address}
            if self.resources.settings.dask_tls:
                found.update(cluster_credentials(session, self.vault, resource.id))
            return found
