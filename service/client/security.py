"""TLS credentials of a Titan cluster as distributed's ``Security``."""

from __future__ import annotations

from typing import Any

from service.client.extras import DASK, needs

with needs("Hub.cluster_security", "dask", DASK):
    from distributed.security import Security


def cluster_security(credentials: dict[str, Any]) -> Security:
    """What a Client needs to reach a cluster whose scheduler accepts only its certificate.

    ``credentials`` is what ``GET /api/v1/resources/cluster/NAME/credentials``
    answers: one self-signed certificate (its own authority) and its key, in PEM.
    """
    cert, key = credentials["tls_cert"], credentials["tls_key"]
    return Security(
        tls_ca_file=cert,
        tls_client_cert=cert,
        tls_client_key=key,
        require_encryption=True,
    )
