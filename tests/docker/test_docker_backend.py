"""The Docker backend against a real engine: networks, labels, limits, images, memory.

What every backend promises (start, stop, status, logs, adoption, secret files)
is tests/backend_contract.py, run against this backend by
tests/docker/test_backend_contract_docker.py.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from service.backends.base import Handle, ProcessSpec
from service.backends.docker import DockerBackend
from service.errors import BackendError
from tests.backend_contract import Program, greeted, until_ended

pytestmark = pytest.mark.docker
LABELS = {"owner": "alice", "resource": "alice/cluster/c", "generation": "3"}
PYTHON = "${TITAN_PYTHON}"
# Connects to argv[1]:argv[2] and prints what it is told.
CONNECT = (
    "import socket, sys; "
    "c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30); "
    "print('told:', c.recv(64).decode().strip(), flush=True)"
)


def spec(resource_id: str, name: str, role: str, argv: list[str], **kw: Any) -> ProcessSpec:
    return ProcessSpec(resource_id, name, role, argv, kw.pop("env", {}), labels=LABELS, **kw)


async def ignore(_handle: Handle) -> None:
    return None


def test_a_resources_processes_share_its_network_and_carry_its_labels(
    docker_client: Any, docker_prefix: str
) -> None:
    backend = DockerBackend(docker_client, prefix=docker_prefix, stop_timeout=5)
    rid = uuid.uuid4().hex

    async def scenario() -> None:
        port = (await backend.reserve_ports({"p": 1}))["p"]
        server = spec(
            rid,
            "server",
            "scheduler",
            Program(serve_after=0).python(port),
            ports=[port],
            published=(port,),
            ready_port=port,
            cpu=0.5,
        )
        await backend.start(server, ignore)
        assert await asyncio.to_thread(greeted, "127.0.0.1", port)  # published on the host
        peer = backend.peer_host("server")  # by name, on the resource's network
        client = spec(rid, "client", "worker", [PYTHON, "-c", CONNECT, peer, str(port)])
        started = await backend.start(client, ignore)
        assert (await until_ended(backend, started.handle)).exit_code == 0
        assert "told: serving" in (await backend.logs(started.handle)).text

    asyncio.run(scenario())
    container = docker_client.containers.get(f"{docker_prefix}-{rid[:12]}-server")
    labels = container.labels
    assert labels["titan.owner"] == "alice" and labels["titan.generation"] == "3"
    assert labels["titan.role"] == "scheduler" and labels["titan.resource"] == "alice/cluster/c"
    assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [f"{docker_prefix}-{rid[:12]}"]
    for bindings in container.attrs["NetworkSettings"]["Ports"].values():
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings)  # never 0.0.0.0

    asyncio.run(backend.forget(rid))
    assert docker_client.containers.list(all=True, filters={"name": docker_prefix}) == []
    assert docker_client.networks.list(filters={"name": docker_prefix}) == []


def test_a_missing_image_says_how_to_get_it(docker_client: Any, docker_prefix: str) -> None:
    backend = DockerBackend(docker_client, prefix=docker_prefix)
    job = spec(uuid.uuid4().hex, "job", "job", ["true"], image="titan/nope:0")
    with pytest.raises(BackendError, match="not on this node: build it with `titan images build`"):
        asyncio.run(backend.start(job, ignore))


def test_an_out_of_memory_kill_is_reported_in_words(docker_client: Any, docker_prefix: str) -> None:
    backend = DockerBackend(docker_client, prefix=docker_prefix)
    hog = [PYTHON, "-c", "x = bytearray(1024 ** 3)"]
    job = spec(uuid.uuid4().hex, "job", "job", hog, memory_bytes=96 * 1024**2)

    async def run() -> Any:
        started = await backend.start(job, ignore)
        return await until_ended(backend, started.handle)

    state = asyncio.run(run())
    assert state.exit_code != 0
    assert "out of memory" in state.reason and "memory in the recipe" in state.reason
