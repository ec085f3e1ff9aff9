"""``Titan``: the application's services, as routes reach them.

Routes import this module, never the composition root (``service/app.py``), which
builds a ``Titan`` at startup and imports every router.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from service.config import Settings
from service.core.capacity.quotas import QuotaService
from service.core.capacity.usage import UsageService
from service.core.control.health_checks import HealthChecker
from service.core.control.reconciler import Reconciler
from service.core.identity.audit import AuditService
from service.core.identity.auth import Authenticator
from service.core.identity.groups import GroupService
from service.core.identity.tokens import TokenService
from service.core.identity.users import UserService
from service.core.sharing.folders import FolderService
from service.core.sharing.image_registry import ImageService
from service.core.sharing.secrets import SecretService
from service.core.workloads.cluster_credentials import ClusterAccess
from service.core.workloads.listing import ResourceListing
from service.core.workloads.resources import ResourceService
from service.core.workloads.runs import RunService
from service.core.workloads.serving import ServingTable
from service.monitoring.monitor import Monitor
from service.monitoring.prometheus import ControlPlaneMetrics


@dataclass
class Titan:
    """What routes reach through ``request.app.state.titan``."""

    settings: Settings
    resources: ResourceService
    runs: RunService
    listing: ResourceListing
    users: UserService
    tokens: TokenService
    groups: GroupService
    quotas: QuotaService
    audit: AuditService
    secrets: SecretService
    images: ImageService
    folders: FolderService
    clusters: ClusterAccess
    usage: UsageService
    reconciler: Reconciler
    authenticate: Authenticator
    http: httpx.AsyncClient  # for relaying dashboards and JupyterLab, and alert webhooks
    monitor: Monitor
    instruments: ControlPlaneMetrics
    serving: ServingTable  # running deployments, their replicas and health: the front door's
    health_checks: HealthChecker  # keeps ``serving`` current
