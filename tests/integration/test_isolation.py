"""What a user's own process can reach on the local backend: not the control plane's
files, environment or CPU, not another user's secrets, and nothing once it is deleted.

Each test runs real jobs as real OS accounts (``TEST_ACCOUNT``, ``OTHER_ACCOUNT``) and
lets them try, the way the outside probe of issue 12 did.
"""

from __future__ import annotations

import json
import os
import pwd
import uuid
from pathlib import Path
from typing import Any

import pytest

from service.client import ResourceRef
from tests.conftest import OTHER_ACCOUNT, TEST_ACCOUNT
from tests.integration.conftest import RunningServer, ServerFactory

# Tries to read and list every path it is given; prints what it got, as JSON.
PROBE = """
import json, os, sys
got = {"read": [], "listed": [], "env": sorted(os.environ), "uid": os.getuid(),
       "home": os.environ.get("HOME"), "nice": os.getpriority(os.PRIO_PROCESS, 0),
       "cgroup": open("/proc/self/cgroup").read()}
for path in json.loads(os.environ["PROBE_PATHS"]):
    try:
        if os.path.isdir(path):
            os.listdir(path)
            got["listed"].append(path)
        else:
            with open(path, "rb") as stream:
                stream.read(1)
            got["read"].append(path)
    except OSError:
        pass
print("PROBE " + json.dumps(got))
"""
OPERATOR_ENVIRONMENT = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "PGPASSWORD": "pg-secret",
    "DATABASE_URL": "postgresql://u:p@db/x",
    "GITHUB_TOKEN": "ghp_secret",
    "OPENAI_API_KEY": "sk-secret",
    "HTTPS_PROXY": "http://proxy:3128",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
    "TITAN_OPERATOR_SETTING": "passed on",
}


def user(server: RunningServer, name: str) -> str:
    """A new non-admin user's token."""
    answer = server.request("POST", "/api/v1/users", json={"name": name})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def probe(server: RunningServer, token: str, name: str, paths: list[str]) -> dict[str, Any]:
    """What a job of the token's user could read, list and see."""
    recipe = {
        "type": "job",
        "name": name,
        "spec": {
            "command": ["python", "-c", PROBE],
            "environment_variables": {"PROBE_PATHS": json.dumps(paths)},
        },
    }
    answer = server.request("PUT", "/api/v1/recipes", token=token, json=recipe)
    assert answer.status_code == 201, answer.text
    hub = server.hub(token)
    hub.wait(f"job/{name}", {"succeeded", "failed"}, timeout=120)
    text = hub.logs(f"job/{name}", tail=50)["processes"]["job"]["text"]
    line = next((x for x in text.splitlines() if x.startswith("PROBE ")), None)
    assert line is not None, text
    return dict(json.loads(line.removeprefix("PROBE ")))


def everything_under(*roots: Path) -> list[str]:
    return [str(p) for root in roots for p in [root, *root.rglob("*")]]


def test_a_users_job_reads_nothing_of_the_control_plane(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in OPERATOR_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    server = start_server(pass_environment=["TITAN_OPERATOR_SETTING"])
    # The admin's own job first, so that its logs and folders are there to be tried too.
    admin_job = probe(server, server.token, "admins", [])
    assert admin_job["uid"] == pwd.getpwnam(TEST_ACCOUNT).pw_uid  # '*' maps admins too
    bob = user(server, "bob")
    data = server.settings.data_dir
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    assert oct((data / "titan.db").stat().st_mode & 0o777) == "0o600"
    paths = [*everything_under(data), f"/proc/{os.getpid()}/environ"]
    assert {"admin-token", "secret.key", "server.key", "titan.db"} <= {Path(p).name for p in paths}
    got = probe(server, bob, "snoop", paths)
    assert got["read"] == [] and got["listed"] == [], got
    assert got["uid"] == pwd.getpwnam(TEST_ACCOUNT).pw_uid
    leaked = set(OPERATOR_ENVIRONMENT) - {"TITAN_OPERATOR_SETTING"}
    assert not leaked & set(got["env"]), got["env"]
    assert "TITAN_OPERATOR_SETTING" in got["env"]  # the operator's own allowlist
    assert got["home"] != os.environ.get("HOME")
    assert str(server.settings.user_root) in got["home"]
    # Its CPU is the users' share, not the control plane's.
    assert "titan-users" in got["cgroup"] or got["nice"] >= 10, got


def test_another_users_running_secrets_and_folders_are_out_of_reach(
    start_server: ServerFactory,
) -> None:
    server = start_server(os_accounts={"alice": TEST_ACCOUNT, "bob": OTHER_ACCOUNT})
    alice, bob = user(server, "alice"), user(server, "bob")
    value = f"s-{uuid.uuid4().hex}"
    assert (
        server.request(
            "POST", "/api/v1/secrets", token=alice, json={"name": "k", "value": value}
        ).status_code
        == 201
    )
    recipe = {
        "type": "job",
        "name": "holds",
        "spec": {"command": "sleep 300", "secrets": [{"name": "k", "file": "k.txt"}]},
    }
    assert server.request("PUT", "/api/v1/recipes", token=alice, json=recipe).status_code == 201
    server.hub(alice).wait("job/holds", {"running"}, timeout=60)
    secret_files = [p for p in server.settings.user_root.rglob("k.txt")]
    assert len(secret_files) == 1
    assert secret_files[0].stat().st_uid == pwd.getpwnam(TEST_ACCOUNT).pw_uid
    got = probe(server, bob, "snoop", everything_under(server.settings.user_root))
    assert str(secret_files[0]) not in got["read"], got
    assert got["listed"] == [], got  # not even the names of alice's folders
    assert got["uid"] == pwd.getpwnam(OTHER_ACCOUNT).pw_uid


def test_without_a_mapping_only_admins_resources_run(start_server: ServerFactory) -> None:
    server = start_server(os_accounts={})
    bob = user(server, "bob")
    job = {"type": "job", "name": "j", "spec": {"command": "true"}}
    refused = server.request("PUT", "/api/v1/recipes", token=bob, json=job)
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert "TITAN_OS_ACCOUNTS" in message and "'bob'" in message
    assert server.request("GET", "/api/v1/resources").json() == []  # nothing stored
    ran = probe(server, server.token, "admins", [])
    assert ran["uid"] == os.geteuid()  # admins run as the server's account


def test_a_mapping_to_root_or_a_missing_account_is_refused(start_server: ServerFactory) -> None:
    server = start_server(os_accounts={"bob": "root", "eve": "no-such-account-here"})
    for name, words in (("bob", "can read the control plane"), ("eve", "does not exist")):
        token = user(server, name)
        job = {"type": "job", "name": "j", "spec": {"command": "true"}}
        refused = server.request("PUT", "/api/v1/recipes", token=token, json=job)
        assert refused.status_code == 403 and words in refused.text, refused.text


def test_nothing_secret_or_of_a_deleted_resource_stays_on_disk(server: RunningServer) -> None:
    value = f"s-{uuid.uuid4().hex}"
    server.request("POST", "/api/v1/secrets", json={"name": "k", "value": value})
    typo = {
        "type": "job",
        "name": "typo",
        "spec": {
            "command": "true",
            "working_directory": "/no/such/folder",
            "secrets": [{"name": "k", "file": "k.txt"}, {"name": "k", "env": "K"}],
        },
    }
    assert server.request("PUT", "/api/v1/recipes", json=typo).status_code == 201
    hub = server.hub()
    hub.wait("job/typo", {"failed"}, timeout=60)
    cluster = {"type": "cluster", "name": "c", "spec": {"n_workers": 1}}
    assert server.request("PUT", "/api/v1/recipes", json=cluster).status_code == 201
    running = hub.wait("cluster/c", {"running"}, timeout=120)
    ids = [hub.get("job/typo")["id"], running["id"]]
    roots = (server.settings.data_dir, server.settings.user_root)
    assert [p for r in roots for p in r.rglob("k.txt")] == []  # never written: the start failed
    for ref in (ResourceRef("job", "typo"), ResourceRef("cluster", "c")):
        hub.delete(ref)
        hub.wait_gone(ref, timeout=60)
    for root in roots:
        for path in root.rglob("*"):
            assert not any(i in str(path) for i in ids), f"{path} outlived its resource"
            if path.is_file():
                data = path.read_bytes()
                assert value.encode() not in data and b"PRIVATE KEY" not in data, path
