"""Secrets reach the process that uses them and nothing else: no answer, log or file."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from service.client import ResourceRef
from service.core.sharing.secrets import Vault
from tests.integration.conftest import RunningServer, ServerFactory

CHECK = """
import hashlib, os, pathlib, sys
env = hashlib.sha256(os.environ["DB_PASSWORD"].encode()).hexdigest()
path = pathlib.Path(os.environ["TITAN_SECRETS_DIR"]) / "cert.pem"
mode = oct(path.stat().st_mode & 0o777)
text = hashlib.sha256(path.read_text().encode()).hexdigest()
print("env", env == "{env}", "file", text == "{file}", "mode", mode)
sys.exit(0 if (env, text) == ("{env}", "{file}") else 3)
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_a_secret_reaches_its_process_and_no_answer_log_or_file(server: RunningServer) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    cert = f"cert-{uuid.uuid4().hex}"
    answers: list[str] = []

    def call(method: str, path: str, **kw: Any) -> Any:
        response = server.request(method, path, **kw)
        answers.append(response.text)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    made = call("POST", "/api/v1/secrets", json={"name": "db", "value": password})
    assert made["name"] == "db" and made["version"] == 1 and "value" not in made
    call("POST", "/api/v1/secrets", json={"name": "cert", "value": cert})
    script = CHECK.format(env=digest(password), file=digest(cert))
    recipe = {
        "type": "job",
        "name": "uses-secrets",
        "spec": {
            "command": ["python", "-c", script],
            "secrets": [{"name": "db", "env": "DB_PASSWORD"}, {"name": "cert", "file": "cert.pem"}],
        },
    }
    call("PUT", "/api/v1/recipes", json=recipe)
    hub = server.hub()
    ref = ResourceRef("job", "uses-secrets")
    hub.wait(ref, {"succeeded", "failed"}, timeout=60)
    job = call("GET", "/api/v1/resources/job/uses-secrets")
    assert "exited with code 0" in job["status_reason"], job
    logs = call("GET", "/api/v1/resources/job/uses-secrets/logs")
    assert "env True file True mode 0o600" in logs["processes"]["job"]["text"]

    rotated = call("PUT", "/api/v1/secrets/db", json={"value": password + "-2"})
    assert rotated["version"] == 2
    listed = call("GET", "/api/v1/secrets")
    assert {s["name"] for s in listed} == {"db", "cert"}
    for path in (
        "/api/v1/resources",
        "/api/v1/resources/job/uses-secrets/recipe",
        "/api/v1/resources/job/uses-secrets/history",
        "/api/v1/telemetry/current",
        "/api/v1/audit",
        "/api/v1/usage",
    ):
        call("GET", path)
    answers.append(server.request("GET", "/metrics").text)

    for text in answers:
        assert password not in text and cert not in text
    # Every file the control plane and its processes wrote: the store (encrypted), its WAL,
    # process folders and logs, handles; the process's secret files are gone with it.
    for root in (server.settings.data_dir.parent, server.settings.user_root):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert password.encode() not in data, f"the secret is in {path}"
                assert cert.encode() not in data, f"the secret is in {path}"
    leftovers = list(server.settings.user_root.rglob("secrets"))
    assert leftovers == []


def test_recipes_may_only_name_secrets_their_caller_may_use(server: RunningServer) -> None:
    bob = server.request("POST", "/api/v1/users", json={"name": "bob"}).json()["token"]
    server.request("POST", "/api/v1/secrets", json={"name": "admins-only", "value": "x"})
    recipe = {
        "type": "job",
        "name": "j",
        "spec": {
            "command": "true",
            "secrets": [{"name": "admins-only", "owner": "admin", "env": "X"}],
        },
    }
    refused = server.request("PUT", "/api/v1/recipes", token=bob, json=recipe)
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert "spec.secrets[0]: no secret 'admins-only' of owner 'admin'" in message
    missing = {**recipe, "spec": {**recipe["spec"], "secrets": [{"name": "nope", "env": "X"}]}}
    assert server.request("PUT", "/api/v1/recipes", token=bob, json=missing).status_code == 422
    assert server.request("GET", "/api/v1/secrets", token=bob).json() == []
    both = {"name": "admins-only", "env": "X", "file": "x"}
    invalid = {**recipe, "spec": {**recipe["spec"], "secrets": [both]}}
    answer = server.request("PUT", "/api/v1/recipes", json=invalid)
    assert answer.status_code == 422 and "exactly one of env" in answer.text
    assert server.request("GET", "/api/v1/resources").json() == []  # nothing half-made


def test_keys_rotate_and_reencrypt_keeps_every_secret(start_server: ServerFactory) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = start_server(secret_keys=[old])
    first.request("POST", "/api/v1/secrets", json={"name": "s", "value": "kept"})
    first.stop()
    second = start_server(secret_keys=[new, old])  # the new key encrypts, the old decrypts
    assert second.request("POST", "/api/v1/secrets/reencrypt").json() == {"reencrypted": 1}
    second.stop()
    db = second.settings.data_dir / "titan.db"
    import sqlite3

    with sqlite3.connect(db) as connection:
        (ciphertext,) = connection.execute("SELECT ciphertext FROM secrets").fetchone()
    assert Vault([new]).decrypt(ciphertext) == "kept"  # the old key is no longer needed
    assert b"kept" not in db.read_bytes()


def test_the_key_file_is_private(server: RunningServer) -> None:
    key = server.settings.data_dir / "secret.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert json.dumps(server.request("GET", "/api/v1/secrets").json()) == "[]"
    assert Path(key).read_text().strip()
