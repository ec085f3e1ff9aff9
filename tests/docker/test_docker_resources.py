"""Recipes on a real server with the docker backend: clusters in containers, errors in words."""

from __future__ import annotations

import socket
import time
from typing import Any

import dask.array as da
import pytest
from distributed import Client

from tests.integration.conftest import ServerFactory

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_cluster_runs_in_containers_and_delete_removes_them(
    start_server: ServerFactory, docker_client: Any, docker_prefix: str
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix)
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "c", "spec": {"n_workers": 2}})
    resource = hub.wait("cluster/c", {"running"}, generation=1, timeout=180)
    with Client(resource["endpoints"]["scheduler"], timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        assert sorted(client.run(socket.gethostname).values()) == ["worker-0", "worker-1"]
        assert da.ones((1000, 1000), chunks=250).sum().compute() == 1_000_000
    names = sorted(c.name for c in docker_client.containers.list(filters={"name": docker_prefix}))
    rid = resource["id"][:12]
    assert names == [f"{docker_prefix}-{rid}-{p}" for p in ("scheduler", "worker-0", "worker-1")]
    hub.delete("cluster/c")
    hub.wait_gone("cluster/c", timeout=120)
    assert docker_client.containers.list(all=True, filters={"name": docker_prefix}) == []
    assert docker_client.networks.list(filters={"name": docker_prefix}) == []


def test_a_missing_image_fails_with_what_to_do(
    start_server: ServerFactory, docker_prefix: str
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix)
    hub = server.hub()
    hub.apply({"type": "job", "name": "j", "spec": {"command": "true", "image": "titan/nope:0"}})
    deadline = time.monotonic() + 60
    while hub.get("job/j")["status"] != "failed":
        assert time.monotonic() < deadline, hub.history("job/j")
        time.sleep(0.2)
    reason = hub.get("job/j")["status_reason"]
    assert "'titan/nope:0' is not on this node" in reason and "titan images build" in reason
