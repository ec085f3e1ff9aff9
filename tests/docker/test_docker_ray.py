"""A Ray cluster in containers: the head and a worker node on the resource's network."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.test_ray_clusters import driver, ray_cluster

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.ray]


def test_a_ray_cluster_runs_in_containers_beside_a_dask_one(
    docker_client: Any, docker_prefix: str, start_server: ServerFactory
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix, start_timeout_seconds=240)
    hub = server.hub()
    hub.apply(ray_cluster())
    hub.apply({"type": "cluster", "name": "d", "spec": {"n_workers": 1}})
    running = hub.wait("cluster/r", {"running"}, timeout=300)
    assert running["endpoints"]["ray"].startswith("ray://127.0.0.1:")
    token = hub.credentials("cluster/r")["ray_token"]
    done = driver(running["endpoints"]["ray"], token)
    assert "answer 42" in done.stdout and "nodes 2" in done.stdout, done.stdout + done.stderr
    assert driver(running["endpoints"]["ray"], "0" * 64).returncode != 0
    with httpx.Client(timeout=30) as browser:  # the dashboard only through the control plane
        version = browser.get(
            f"{server.url}/dashboards/{running['id']}/api/version",
            headers={"Authorization": f"Bearer {server.token}"},
        )
        assert version.status_code == 200 and version.json()["ray_version"].startswith("2.")
    rid = running["id"][:12]
    names = sorted(c.name for c in docker_client.containers.list(filters={"name": docker_prefix}))
    assert [f"{docker_prefix}-{rid}-head", f"{docker_prefix}-{rid}-worker-0"] == [
        n for n in names if rid in n
    ]
    hub.wait("cluster/d", {"running"}, timeout=120)
    hub.delete("cluster/r")
    hub.wait_gone("cluster/r", timeout=120)
