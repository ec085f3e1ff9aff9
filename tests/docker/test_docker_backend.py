"""The Docker backend against a real engine: containers, networks, labels, limits."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import pytest
from distributed import Client

from service.backends.base import Handle, ProcessSpec, handle_identity
from service.backends.docker import DockerBackend
from service.errors import BackendError

pytestmark = pytest.mark.docker
LABELS = {"owner": "alice", "resource": "alice/cluster/c", "generation": "3"}


def spec(resource_id: str, name: str, role: Any, args: list[str], **kw: Any) -> ProcessSpec:
    return ProcessSpec(resource_id, name, role, args, kw.pop("env", {}), labels=LABELS, **kw)


def test_a_cluster_in_containers_serves_a_client_on_the_host(
    docker_client: Any, docker_prefix: str
) -> None:
    backend = DockerBackend(docker_client, prefix=docker_prefix, stop_timeout=5)
    rid = uuid.uuid4().hex
    handles: list[Handle] = []

    async def checkpoint(handle: Handle) -> None:
        handles.append(handle)

    async def start() -> dict[str, str]:
        scheduler = spec(rid, "scheduler", "scheduler", [])
        extra, early = await backend.reserve_endpoints(scheduler)
        scheduler = spec(rid, "scheduler", "scheduler", extra)
        env = {"DASK_SCHEDULER_ADDRESS": early["scheduler"]}
        workers = [
            spec(rid, f"worker-{i}", "worker", ["--name", f"worker-{i}"], env=env, cpu=0.5)
            for i in range(2)
        ]
        started = await asyncio.gather(
            *(backend.start(s, checkpoint) for s in [scheduler, *workers])
        )
        assert started[0].endpoints["scheduler"] == early["scheduler"]
        return started[0].endpoints

    endpoints = asyncio.run(start())
    assert endpoints["scheduler"].startswith("tcp://127.0.0.1:")
    assert endpoints["dashboard"].startswith("http://127.0.0.1:")
    with Client(endpoints["scheduler"], timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        ran_on = client.run(socket.gethostname)  # inside each worker container
        assert sorted(ran_on.values()) == ["worker-0", "worker-1"]
        assert client.submit(sum, range(101)).result() == 5050

    container = docker_client.containers.get(f"{docker_prefix}-{rid[:12]}-worker-0")
    labels = container.labels
    assert labels["titan.owner"] == "alice" and labels["titan.generation"] == "3"
    assert labels["titan.role"] == "worker" and labels["titan.resource"] == "alice/cluster/c"
    assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [f"{docker_prefix}-{rid[:12]}"]
    scheduler = docker_client.containers.get(f"{docker_prefix}-{rid[:12]}-scheduler")
    for bindings in scheduler.attrs["NetworkSettings"]["Ports"].values():
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings)  # never 0.0.0.0

    async def finish() -> None:
        adopted = {handle_identity(h) for h in await backend.adopt()}
        assert {handle_identity(h) for h in handles} <= adopted
        for handle in handles:
            await backend.stop(handle)
            await backend.stop(handle)  # idempotent
            assert not (await backend.status(handle)).running
        logs = await backend.logs(handles[0], tail=50)
        assert "titan: ready" in logs.text
        everything = await backend.logs(handles[0])  # following: from an offset on
        assert "titan: ready" in everything.text
        assert (await backend.logs(handles[0], offset=everything.next_offset)).text == ""
        await backend.forget(rid)

    asyncio.run(finish())
    assert docker_client.containers.list(all=True, filters={"name": docker_prefix}) == []
    assert docker_client.networks.list(filters={"name": docker_prefix}) == []


def test_a_missing_image_says_how_to_get_it(docker_client: Any, docker_prefix: str) -> None:
    backend = DockerBackend(docker_client, prefix=docker_prefix)

    async def ignore(handle: Handle) -> None:
        pass

    job = spec(uuid.uuid4().hex, "job", "job", ["--shell", "true"], image="titan/nope:0")
    with pytest.raises(BackendError, match="not on this node: build it with `titan images build`"):
        asyncio.run(backend.start(job, ignore))


def test_an_out_of_memory_kill_is_reported_in_words(docker_client: Any, docker_prefix: str) -> None:
    backend = DockerBackend(docker_client, prefix=docker_prefix)
    handles: list[Handle] = []

    async def checkpoint(handle: Handle) -> None:
        handles.append(handle)

    hog = "python -c 'x = bytearray(1024 ** 3)'"
    job = spec(uuid.uuid4().hex, "job", "job", ["--shell", hog], memory_bytes=96 * 1024**2)

    async def run() -> Any:
        await backend.start(job, checkpoint)
        for _ in range(300):
            state = await backend.status(handles[0])
            if not state.running:
                return state
            await asyncio.sleep(0.1)
        raise AssertionError("the job did not end")

    state = asyncio.run(run())
    assert state.exit_code != 0
    assert "out of memory" in state.reason and "memory in the recipe" in state.reason
