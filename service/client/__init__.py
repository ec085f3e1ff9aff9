"""The Python client of Titan. It talks HTTP only and never imports server modules.

``pip install titan`` installs it with the CLI; ``TitanCluster`` also needs Dask's
``distributed`` (``pip install 'titan[dask]'``), ``RayCluster.init`` needs Ray
(``titan[ray]``).
"""

from service.client.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    ServerUnavailable,
    TitanClientError,
    UnauthenticatedError,
)
from service.client.hub import AsyncHub, Hub, ResourceRef
from service.client.ray_cluster import RayCluster


def __getattr__(name: str) -> object:
    """``TitanCluster`` is imported on first use: it pulls in ``distributed``."""
    if name == "TitanCluster":
        from service.client.extras import DASK, needs

        with needs("TitanCluster", "dask", DASK):
            from service.client.cluster import TitanCluster
        return TitanCluster
    raise AttributeError(name)


__all__ = [
    "AsyncHub",
    "ConflictError",
    "ForbiddenError",
    "Hub",
    "InvalidError",
    "NotFoundError",
    "RayCluster",
    "ResourceRef",
    "ServerUnavailable",
    "TitanClientError",
    "TitanCluster",
    "UnauthenticatedError",
]
