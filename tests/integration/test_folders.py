"""Shared folders: one job writes, another reads; ownership decides who may mount."""

from __future__ import annotations

from service.client import ResourceRef
from tests.integration.conftest import RunningServer

WRITE = 'import os; open(os.path.join(os.environ["TITAN_FOLDER_DATA"], "x.txt"), "w").write("42")'
READ = "print('read', open('data/x.txt').read())"  # through the link in the job's folder


def job(name: str, code: str, owner: str | None = None) -> dict[str, object]:
    recipe: dict[str, object] = {
        "type": "job",
        "name": name,
        "spec": {
            "command": ["python", "-c", code],
            "folders": [{"name": "data", "owner": "ml", "path": "/data", "read_only": True}],
        },
    }
    if owner:
        recipe["owner"] = owner
    return recipe


def test_a_group_folder_is_shared_by_its_resources_only(server: RunningServer) -> None:
    ann = server.request("POST", "/api/v1/users", json={"name": "ann"}).json()["token"]
    bob = server.request("POST", "/api/v1/users", json={"name": "bob"}).json()["token"]
    server.request("POST", "/api/v1/groups", json={"name": "ml", "admins": ["ann"]})
    made = server.request(
        "POST", "/api/v1/folders", token=ann, json={"name": "data", "owner": "ml"}
    )
    assert made.status_code == 201, made.text

    hub = server.hub(ann)
    hub.apply(job("writer", WRITE, owner="ml"))
    hub.wait(ResourceRef("job", "writer", "ml"), {"succeeded"}, timeout=60)
    hub.apply(job("reader", READ, owner="ml"))
    hub.wait(ResourceRef("job", "reader", "ml"), {"succeeded"}, timeout=60)
    logs = hub.logs(ResourceRef("job", "reader", "ml"))["processes"]["job"]["text"]
    assert "read 42" in logs
    host = server.settings.folders_dir / "ml" / "data" / "x.txt"
    assert host.read_text() == "42"

    refused = server.request("PUT", "/api/v1/recipes", token=bob, json=job("peek", READ))
    assert refused.status_code == 422
    assert "spec.folders[0]: no folder 'data' of owner 'ml'" in refused.json()["error"]["message"]
    assert server.request("GET", "/api/v1/folders", token=bob).json() == []
    # A personal resource of a member may mount the group's folder; bob's (no member) may not.
    mine = server.request("PUT", "/api/v1/recipes", token=ann, json=job("mine", READ))
    assert mine.status_code == 201, mine.text
    hub.wait(ResourceRef("job", "mine", "ann"), {"succeeded"}, timeout=60)
    gone = server.request("DELETE", "/api/v1/folders/data", token=ann, params={"owner": "ml"})
    assert gone.status_code == 204
    assert host.read_text() == "42"  # forgetting a folder never deletes its files
