"""Where a cluster's dashboard and a workspace's JupyterLab live: behind the control
plane (the one front door), each under one path.

Every cluster's dashboard is reached at ``/dashboards/<resource id>``; its
engine says how the control plane relays that path to the address the
dashboard listens on (127.0.0.1 or the resource's network only). Only the
owner, admins, and holders of the cluster's dashboard ticket get through.
"""

from __future__ import annotations


def jupyter_path(resource_id: str) -> str:
    """The path a workspace's JupyterLab is served under (its ``base_url``), by JupyterLab
    and the API alike."""
    return f"/jupyter/{resource_id}"


def deployment_path(owner: str, name: str) -> str:
    """The stable path a deployment is served under (``/deploy/<owner>/<name>``)."""
    return f"/deploy/{owner}/{name}"


def dashboard_path(resource_id: str) -> str:
    """The path a resource's dashboard is served under, by its scheduler and the API alike."""
    return f"/dashboards/{resource_id}"
