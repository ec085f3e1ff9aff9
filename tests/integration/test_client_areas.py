"""Every API area through the client's typed methods, against a real server."""

from __future__ import annotations

import asyncio

import pytest

from service.client import AsyncHub, ConflictError, NotFoundError
from tests.integration.conftest import RunningServer


def test_sharing_through_the_typed_methods(server: RunningServer) -> None:
    with server.hub() as hub:
        ann = hub.create_user("ann")
        assert hub.create_group("ml", ["ann"])["name"] == "ml"
        hub.create_user("bob")
        members = hub.add_member("ml", "bob")["members"]
        assert {(m["user"], m["role"]) for m in members} == {("ann", "admin"), ("bob", "member")}
        assert [g["name"] for g in hub.groups()] == ["ml"]
        hub.remove_member("ml", "bob")
        assert [m["user"] for m in hub.group("ml")["members"]] == ["ann"]

        hub.set_quota("ml", gpus=2, memory="8GiB")
        assert hub.quota("ml")["limits"]["gpus"] == 2
        assert "ml" in [q["owner"] for q in hub.quotas()]
        hub.delete_quota("ml")
        with pytest.raises(NotFoundError):
            hub.quota("nobody")

        assert hub.create_secret("db", "v1", owner="ml")["version"] == 1
        assert hub.rotate_secret("db", "v2", owner="ml")["version"] == 2
        assert [(s["owner"], s["name"]) for s in hub.secrets()] == [("ml", "db")]
        assert "value" not in hub.secrets()[0]
        assert hub.reencrypt_secrets()["reencrypted"] == 1
        hub.delete_secret("db", owner="ml")
        assert hub.secrets() == []

        assert hub.create_folder("data")["name"] == "data"
        assert [f["name"] for f in hub.folders()] == ["data"]
        hub.delete_folder("data")

        image = hub.register_image("nvcr.io/nvidia/pytorch:24.01-py3", owner="ml")
        assert image["reference"] == "nvcr.io/nvidia/pytorch:24.01-py3"
        assert image["id"] in [i["id"] for i in hub.images()]
        hub.delete_image(image["id"])
        hub.create_folder("kept", owner="ml")
        with pytest.raises(ConflictError):
            hub.delete_group("ml")  # it owns a folder
        hub.delete_folder("kept", owner="ml")
        hub.delete_group("ml")
        assert hub.groups() == []
        assert ann["token"]


def test_monitoring_and_accounts_through_the_typed_methods(server: RunningServer) -> None:
    with server.hub() as hub:
        assert hub.me()["is_admin"]
        assert hub.nodes()[0]["cpus"] > 0
        assert hub.current() == []
        assert hub.alerts() == [] and hub.alerts("firing", limit=5) == []
        hub.put_alert_rule("hot", "gpu_temperature_celsius", ">=", 80, for_seconds=10)
        rules = {r["name"]: r for r in hub.alert_rules()}
        assert rules["hot"]["threshold"] == 80
        hub.delete_alert_rule("hot")
        assert "hot" not in [r["name"] for r in hub.alert_rules()]
        assert isinstance(hub.reclaims(), dict)
        assert "days" in hub.usage(owner="admin")
        made = hub.create_token("ci", expires_in=600)
        assert made["id"] in [t["id"] for t in hub.tokens()]
        hub.revoke_token(made["id"])
        events = hub.audit(limit=3)
        assert 1 <= len(events) <= 3 and events[0]["method"] == "DELETE"


def test_the_async_client_has_the_same_areas(server: RunningServer) -> None:
    async def scenario() -> None:
        async with AsyncHub(server.url, server.token) as hub:
            await hub.create_folder("shared")
            folders, nodes, history = await asyncio.gather(
                hub.folders(), hub.nodes(), hub.audit(limit=1)
            )
            assert [f["name"] for f in folders] == ["shared"]
            assert nodes and history[0]["path"] == "/api/v1/folders"
            assert await hub.healthy()

    asyncio.run(scenario())
