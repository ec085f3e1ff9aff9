"""A real Docker engine for the docker-marked tests, and cleanup by name prefix.

Set ``TITAN_TEST_DOCKER=1`` (``.ci/run`` does) to make a missing engine or
image a failure; otherwise these tests skip where there is no engine. Every
container, network and volume a test makes carries a per-test prefix and is
removed after it; a failed test prints its containers' logs first.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

docker = pytest.importorskip("docker")

REQUIRED = os.environ.get("TITAN_TEST_DOCKER") == "1"
IMAGE = os.environ.get("TITAN_TEST_IMAGE", "titan/cpu:latest")

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client of the local engine, with Titan's CPU image present."""
    try:
        client = docker.from_env()
        client.ping()
        client.images.get(IMAGE)
    except Exception as exc:
        if REQUIRED:
            pytest.fail(f"TITAN_TEST_DOCKER=1 but the engine or {IMAGE} is missing: {exc}")
        pytest.skip(f"no Docker engine with {IMAGE} here ({exc})")
    yield client
    client.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed docker test's report shows its containers' logs (taken before teardown
    deletes them)."""
    outcome = yield
    report = outcome.get_result()
    prefix = getattr(item, "funcargs", {}).get("docker_prefix")
    if report.when != "call" or not report.failed or not prefix:
        return
    client = item.funcargs["docker_client"]
    for container in client.containers.list(all=True, filters={"name": prefix}):
        logs = container.logs(tail=60).decode(errors="replace")
        report.sections.append((f"logs of {container.name} ({container.status})", logs))


@pytest.fixture
def docker_prefix(docker_client: Any) -> Iterator[str]:
    """A unique name prefix; what carries it is removed after the test.

    Request it before ``start_server`` so that servers stop first.
    """
    prefix = f"titantest{uuid.uuid4().hex[:6]}"
    yield prefix
    for container in docker_client.containers.list(all=True, filters={"name": prefix}):
        container.remove(force=True)
    for network in docker_client.networks.list(filters={"name": prefix}):
        network.remove()
    for volume in docker_client.volumes.list(filters={"name": prefix}):
        volume.remove(force=True)


from tests.integration.conftest import (  # noqa: E402 - a real server
    RunningServer,
    ServerFactory,
    start_server,  # noqa: F401
)


@pytest.fixture
def reachable_server(
    docker_client: Any,
    docker_prefix: str,
    start_server: ServerFactory,  # noqa: F811
) -> RunningServer:
    """A docker-backend server that processes in containers reach too: at the address
    the server finds itself (the default bridge's gateway), as `titan server` does."""
    return start_server(backend="docker", docker_prefix=docker_prefix)
