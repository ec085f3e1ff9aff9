"""Where a cluster's Dask dashboard lives: behind the control plane, under one path.

Each scheduler serves its dashboard under ``/dashboards/<resource id>`` (its
``--dashboard-prefix``), so the control plane proxies that path unchanged to
the address the scheduler's dashboard listens on (127.0.0.1 only). Only the
owner, admins, and holders of the cluster's dashboard ticket get through.
"""

from __future__ import annotations


def dashboard_path(resource_id: str) -> str:
    """The path a resource's dashboard is served under, by its scheduler and the API alike."""
    return f"/dashboards/{resource_id}"
