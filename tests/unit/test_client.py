"""The client's one async core and its sync face, against a real (recording) HTTP server."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

from service.client import AsyncHub, Hub, NotFoundError, ServerUnavailable
from tests.recording_server import RecordingServer

# What the async client has that its sync face names differently.
ASYNC_ONLY = {"aclose"}


@pytest.fixture
def api() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


def _coroutines(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(cls, name))
        for name in dir(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(getattr(cls, name))
    }


def test_hub_and_async_hub_have_the_same_methods() -> None:
    async_methods = _coroutines(AsyncHub)
    assert {"history", "nodes", "healthy", "groups", "quota", "secrets", "folders"} <= set(
        async_methods
    )
    for name, signature in async_methods.items():
        if name in ASYNC_ONLY:
            continue
        method = getattr(Hub, name, None)
        assert method is not None, f"Hub lacks {name}: add `{name} = blocking(AsyncHub.{name})`"
        assert not inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == signature, name
        assert method.__doc__ == getattr(AsyncHub, name).__doc__
    public = {n for n in dir(Hub) if not n.startswith("_") and callable(getattr(Hub, n))}
    assert public - set(async_methods) == {"close"}


def test_the_sync_client_reuses_its_connection(api: RecordingServer) -> None:
    with Hub(api.url, "secret") as hub:
        for _ in range(5):
            assert hub.list() == []
        hub.nodes()
        assert hub.healthy()
    assert len(api.requests) == 7
    assert api.connections == 1


def test_the_async_client_reuses_its_connection(api: RecordingServer) -> None:
    async def calls() -> None:
        async with AsyncHub(api.url, "secret") as hub:
            for _ in range(5):
                await hub.history("cluster/x")
            await asyncio.gather(*(hub.get("cluster/x") for _ in range(3)))

    asyncio.run(calls())
    assert len(api.requests) == 8
    assert api.connections <= 3  # the gathered calls may open their own; the rest reuse


def test_a_new_event_loop_gets_working_connections(api: RecordingServer) -> None:
    hub = AsyncHub(api.url, "secret")
    asyncio.run(hub.list())
    asyncio.run(hub.list())  # the first loop's pool is closed with it: a new one is made
    assert len(api.requests) == 2


def test_the_sync_client_works_where_an_event_loop_runs(api: RecordingServer) -> None:
    async def in_a_notebook_cell() -> list[object]:
        return Hub(api.url, "secret").list("cluster")

    assert asyncio.run(in_a_notebook_cell()) == []
    assert api.requests[-1][:3] == ("GET", "/api/v1/resources", {"type": "cluster"})


def test_errors_are_typed_and_sent_what_was_asked(api: RecordingServer) -> None:
    api.answers[("GET", "/api/v1/quotas/ml")] = (
        404,
        {"error": {"code": "not_found", "message": "no user or group named 'ml'"}},
    )
    hub = Hub(api.url, "secret")
    with pytest.raises(NotFoundError, match="no user or group named 'ml'"):
        hub.quota("ml")
    hub.register_image("registry:5000/team/torch:2.1@sha256:" + "a" * 64, owner="ml")
    method, path, _, body = api.requests[-1]
    assert (method, path) == ("POST", "/api/v1/images")
    assert body == {
        "name": "registry:5000/team/torch",
        "tag": "2.1",
        "digest": "sha256:" + "a" * 64,
        "public": False,
        "owner": "ml",
    }
    hub.rotate_secret("db", "v2", owner="ml")
    assert api.requests[-1] == ("PUT", "/api/v1/secrets/db", {"owner": "ml"}, {"value": "v2"})


def test_a_callback_calling_the_sync_client_is_refused(api: RecordingServer) -> None:
    api.answers[("GET", "/api/v1/resources/job/j")] = (
        200,
        {"type": "job", "name": "j", "status": "stopped", "status_reason": "done"},
    )
    hub = Hub(api.url, "secret")
    with pytest.raises(RuntimeError, match="use the AsyncHub there"):
        hub.wait("job/j", {"stopped"}, on_change=lambda resource: hub.list())
    seen: list[str] = []
    hub.wait("job/j", {"stopped"}, on_change=lambda resource: seen.append(resource["status"]))
    assert seen == ["stopped"]


def test_no_server_is_server_unavailable() -> None:
    api = RecordingServer()
    api.close()
    hub = Hub(api.url, "secret", timeout=2)
    with pytest.raises(ServerUnavailable, match="no Titan server answers"):
        hub.list()
    assert hub.healthy() is False
