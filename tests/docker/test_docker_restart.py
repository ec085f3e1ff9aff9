"""Kill -9 a control plane running the docker backend: its containers are re-adopted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from tests.integration.test_restart_safety import running_server_process

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_containers_are_adopted_and_a_dead_worker_replaced_after_kill_9(
    docker_client: Any, docker_prefix: str, tmp_path: Path
) -> None:
    env = {"TITAN_BACKEND": "docker", "TITAN_DOCKER_PREFIX": docker_prefix}

    def containers() -> dict[str, str]:
        found = docker_client.containers.list(filters={"name": docker_prefix})
        return {c.labels["titan.process"]: c.id for c in found}

    with running_server_process(tmp_path / "data", env) as server:
        hub = server.start()
        hub.apply({"type": "cluster", "name": "c", "spec": {"n_workers": 2}})
        hub.wait("cluster/c", {"running"}, generation=1, timeout=180)
        before = containers()
        assert sorted(before) == ["scheduler", "worker-0", "worker-1"]
        server.kill()
        docker_client.containers.get(before["worker-1"]).kill()  # dies while nobody watches
        hub = server.start()

        def converged() -> bool:
            now = containers()
            return (
                hub.get("cluster/c")["status"] == "running"
                and len(now) == 3
                and (now.get("worker-1") not in (None, before["worker-1"]))
            )

        deadline = time.monotonic() + 120
        while not converged():
            assert time.monotonic() < deadline, hub.history("cluster/c")
            time.sleep(0.3)
        after = containers()
        assert after["scheduler"] == before["scheduler"]  # adopted, not restarted
        assert after["worker-0"] == before["worker-0"]
        address = hub.get("cluster/c")["endpoints"]["scheduler"]
        security = hub.cluster_security("cluster/c")
        with Client(address, security=security, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            assert client.submit(sum, [1, 2, 3]).result() == 6
