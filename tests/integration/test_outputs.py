"""A job's outputs through the API: what it wrote is listed and downloadable by its owner,
and nothing it planted (links to the control plane's files, a FIFO) is ever followed."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import RunningServer, ServerFactory
from tests.integration.test_cli import titan
from tests.integration.test_isolation import user

# Writes real results, then every trap a job could leave for a root reader.
WRITER = """
import os, sys
out = os.environ["TITAN_OUTPUT_DIR"]
os.makedirs(os.path.join(out, "plots"), exist_ok=True)
with open(os.path.join(out, "model.bin"), "wb") as f:
    f.write(bytes(range(256)) * 1000)
with open(os.path.join(out, "plots", "loss 1.csv"), "w") as f:
    f.write("step,loss\\n1,0.5\\n")
os.symlink(sys.argv[1], os.path.join(out, "token"))
os.symlink(os.path.dirname(sys.argv[1]), os.path.join(out, "data"))
with open(os.path.join(out, "mine"), "w") as f:
    f.write("x")
os.link(os.path.join(out, "mine"), os.path.join(out, "mine-again"))
os.mkfifo(os.path.join(out, "pipe"))
print("wrote")
"""


def run_writer(server: RunningServer, token: str, name: str) -> None:
    admin_token = str(server.settings.data_dir / "admin-token")
    job = {
        "type": "job",
        "name": name,
        "spec": {"command": ["python", "-c", WRITER, admin_token]},
    }
    assert server.request("PUT", "/api/v1/recipes", token=token, json=job).status_code == 201
    server.hub(token).wait(f"job/{name}", {"succeeded", "failed"}, timeout=120)
    assert server.hub(token).get(f"job/{name}")["status"] == "succeeded"


def test_a_jobs_outputs_are_listed_and_downloaded_but_no_planted_link_is_followed(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    bob = user(server, "bob")
    run_writer(server, bob, "train")
    listed = server.request("GET", "/api/v1/resources/job/train/outputs", token=bob)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [f["path"] for f in body["files"]] == ["model.bin", "plots/loss 1.csv"]
    assert body["files"][0]["size"] == 256_000
    assert set(body["skipped"]) >= {"token", "mine", "mine-again", "pipe"}
    assert body["truncated"] is False

    model = server.request("GET", "/api/v1/resources/job/train/outputs/model.bin", token=bob)
    assert model.status_code == 200
    assert model.content == bytes(range(256)) * 1000
    assert "attachment" in model.headers["content-disposition"]
    csv = server.request("GET", "/api/v1/resources/job/train/outputs/plots/loss%201.csv", token=bob)
    assert csv.status_code == 200 and csv.text.startswith("step,loss")

    secret = server.settings.data_dir.joinpath("admin-token").read_text().strip()
    for trap in ("token", "data/admin-token", "mine-again", "pipe"):
        got = server.request("GET", f"/api/v1/resources/job/train/outputs/{trap}", token=bob)
        assert got.status_code == 404, (trap, got.status_code)
        assert secret not in got.text
    for escape in (
        "../../../../admin-token",  # the client resolves dots itself: another route
        "..%2F..%2F..%2F..%2Fdata%2Fadmin-token",
        ".%2Fmodel.bin",
        "plots%2F%2Floss 1.csv",
    ):
        got = server.request("GET", f"/api/v1/resources/job/train/outputs/{escape}", token=bob)
        assert got.status_code in (404, 422), (escape, got.status_code)
        assert secret not in got.text
    refused = server.request(
        "GET", "/api/v1/resources/job/train/outputs/plots/..%2F..%2Fmodel.bin", token=bob
    )
    assert refused.status_code == 422 and "path" in refused.json()["error"]["message"]


def test_only_who_may_see_the_job_reads_its_outputs(start_server: ServerFactory) -> None:
    server = start_server()
    bob, eve = user(server, "bob"), user(server, "eve")
    run_writer(server, bob, "train")
    for path in ("", "model.bin"):
        suffix = f"/{path}" if path else ""
        url = f"/api/v1/resources/job/train/outputs{suffix}"
        assert server.request("GET", url, token=eve).status_code == 404
        admin = server.request("GET", url + "?owner=bob")
        assert admin.status_code == 200  # admins see every job's outputs


def test_a_job_that_wrote_nothing_lists_no_outputs(server: RunningServer) -> None:
    job = {"type": "job", "name": "later", "spec": {"command": "true"}}
    assert server.request("PUT", "/api/v1/recipes", json=job).status_code == 201
    server.hub().wait("job/later", {"succeeded"}, timeout=60)
    listed = server.request("GET", "/api/v1/resources/job/later/outputs")
    assert listed.status_code == 200
    assert listed.json() == {"files": [], "skipped": [], "truncated": False, "run": 1}
    missing = server.request("GET", "/api/v1/resources/job/later/outputs/model.bin")
    assert missing.status_code == 404 and "titan outputs" in missing.json()["error"]["message"]


def test_titan_outputs_lists_and_gets_a_file_and_refuses_a_planted_link(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server()
    bob = user(server, "bob")
    run_writer(server, bob, "train")
    as_bob = {"TITAN_TOKEN": bob, "COLUMNS": "200"}
    listed = titan(server, "outputs", "job/train", env=as_bob)
    assert listed.returncode == 0, listed.stderr
    assert "model.bin" in listed.stdout and "256000" in listed.stdout
    assert "plots/loss 1.csv" in listed.stdout and "token" in listed.stdout  # as skipped

    saved = tmp_path / "model.bin"
    got = titan(server, "outputs", "job/train", "--get", "model.bin", "-o", str(saved), env=as_bob)
    assert got.returncode == 0, got.stderr
    assert saved.read_bytes() == bytes(range(256)) * 1000
    assert "256000 bytes" in got.stdout

    trap = titan(
        server, "outputs", "job/train", "--get", "token", "-o", str(tmp_path / "t"), env=as_bob
    )
    assert trap.returncode == 1
    assert len(trap.stderr.strip().splitlines()) == 1 and "Traceback" not in trap.stderr
    assert not (tmp_path / "t").exists() and not (tmp_path / "t.part").exists()
