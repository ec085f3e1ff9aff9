"""Recipes on a real server with the docker backend: clusters in containers, errors in words."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import dask.array as da
import httpx
import pytest
from distributed import Client

from service.client import Hub
from tests.integration.conftest import RunningServer, ServerFactory

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_cluster_runs_in_containers_and_delete_removes_them(
    docker_client: Any, docker_prefix: str, start_server: ServerFactory
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix)
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "c", "spec": {"n_workers": 2}})
    resource = hub.wait("cluster/c", {"running"}, generation=1, timeout=180)
    security = hub.cluster_security("cluster/c")
    with Client(resource["endpoints"]["scheduler"], security=security, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        assert sorted(client.run(socket.gethostname).values()) == ["worker-0", "worker-1"]
        assert da.ones((1000, 1000), chunks=250).sum().compute() == 1_000_000
    with httpx.Client(timeout=30) as browser:  # the dashboard, through the control plane
        assert browser.get(resource["endpoints"]["dashboard"]).status_code == 200
        counts = browser.get(f"{server.url}/dashboards/{resource['id']}/json/counts.json")
        assert counts.status_code == 200 and counts.json()["workers"] == 2
    names = sorted(c.name for c in docker_client.containers.list(filters={"name": docker_prefix}))
    rid = resource["id"][:12]
    assert names == [f"{docker_prefix}-{rid}-{p}" for p in ("scheduler", "worker-0", "worker-1")]
    hub.delete("cluster/c")
    hub.wait_gone("cluster/c", timeout=120)
    assert docker_client.containers.list(all=True, filters={"name": docker_prefix}) == []
    assert docker_client.networks.list(filters={"name": docker_prefix}) == []


def test_a_missing_image_fails_with_what_to_do(
    docker_prefix: str, start_server: ServerFactory
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix)
    hub = server.hub()
    hub.send_json("POST", "/api/v1/images", {"name": "titan/nope", "tag": "0"})  # allowed...
    hub.apply({"type": "job", "name": "j", "spec": {"command": "true", "image": "titan/nope:0"}})
    deadline = time.monotonic() + 60
    # A failed start is retried with backoff, so status and reason come from one snapshot.
    while (job := hub.get("job/j"))["status"] != "failed":
        assert time.monotonic() < deadline, hub.history("job/j")
        time.sleep(0.2)
    reason = job["status_reason"]
    assert "'titan/nope:0' is not on this node" in reason and "titan images build" in reason


def test_a_workspace_is_jupyterlab_in_a_container_with_a_home_that_persists(
    docker_prefix: str, start_server: ServerFactory
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix)
    hub = server.hub()
    hub.apply({"type": "workspace", "name": "lab", "spec": {}})
    running = hub.wait("workspace/lab", {"running"}, generation=1, timeout=180)
    base, ticket = running["endpoints"]["jupyter"].split("/lab?ticket=")
    assert base.startswith("http://127.0.0.1:")
    assert httpx.get(f"{base}/api/status", params={"ticket": ticket}).status_code == 200
    assert httpx.get(f"{base}/api/status").status_code in (401, 403)
    note = {"type": "file", "format": "text", "content": "kept"}
    saved = httpx.put(f"{base}/api/contents/note.txt", params={"ticket": ticket}, json=note)
    assert saved.status_code in (200, 201), saved.text
    hub.stop("workspace/lab")
    hub.wait("workspace/lab", {"stopped"}, timeout=120)
    hub.start("workspace/lab")
    again = hub.wait("workspace/lab", {"running"}, timeout=180)
    base, ticket = again["endpoints"]["jupyter"].split("/lab?ticket=")
    read = httpx.get(f"{base}/api/contents/note.txt", params={"ticket": ticket})
    assert read.status_code == 200 and read.json()["content"] == "kept"


def test_a_process_in_a_container_reaches_the_api_with_its_own_token(
    reachable_server: RunningServer,
) -> None:
    server = reachable_server
    hub = server.hub()
    script = (
        "import os, httpx; "
        "r = httpx.get(os.environ['TITAN_URL'] + '/api/v1/resources', "
        "headers={'Authorization': 'Bearer ' + os.environ['TITAN_TOKEN']}); "
        "print('api says', r.status_code, [x['name'] for x in r.json()])"
    )
    hub.apply({"type": "job", "name": "caller", "spec": {"command": ["python", "-c", script]}})
    finished(hub, "job/caller")
    output = hub.logs("job/caller")["processes"]["job"]["text"]
    assert "api says 200 ['caller']" in output, output
    assert hub.get("job/caller")["status"] == "succeeded"


NOTEBOOK_CELLS = [
    "import socket\n"
    "from distributed import Client\n"
    "from service.client import TitanCluster\n"
    "cluster = TitanCluster.attached()\n"
    "client = Client(cluster)\n"
    "client.wait_for_workers(2, timeout=120)",
    "workers = sorted(client.run(socket.gethostname).values())\n"
    "ran_on = client.submit(socket.gethostname, pure=False).result()\n"
    "total = client.submit(sum, range(1000)).result()\n"
    "plain = Client()  # DASK_SCHEDULER_ADDRESS, as any Dask user would\n"
    "plain_ran_on = plain.submit(socket.gethostname, pure=False).result()\n"
    "print('RESULT', workers, ran_on, total, plain_ran_on, socket.gethostname())",
]


def test_a_notebook_in_the_workspace_computes_on_its_remote_workers(
    docker_client: Any, docker_prefix: str, reachable_server: RunningServer
) -> None:
    server = reachable_server
    hub = server.hub()
    recipe = {"type": "workspace", "name": "nb", "spec": {"dask_cluster": {"n_workers": 2}}}
    hub.apply(recipe)
    running = hub.wait("workspace/nb", {"running"}, generation=1, timeout=240)
    base, ticket = running["endpoints"]["jupyter"].split("/lab?ticket=")
    cells = [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for src in NOTEBOOK_CELLS
    ]
    notebook = {
        "type": "notebook",
        "format": "json",
        "content": {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    }
    saved = httpx.put(f"{base}/api/contents/attach.ipynb", params={"ticket": ticket}, json=notebook)
    assert saved.status_code in (200, 201), saved.text
    jupyter = docker_client.containers.get(f"{docker_prefix}-{running['id'][:12]}-jupyter")
    executed = jupyter.exec_run(
        ["jupyter", "nbconvert", "--to", "notebook", "--execute", "--stdout", "attach.ipynb"],
        workdir="/home/titan",
        demux=True,
    )
    out, err = executed.output
    assert executed.exit_code == 0, (err or b"").decode()[-3000:]
    result = next(
        line
        for cell in json.loads(out)["cells"]
        for output in cell.get("outputs", [])
        for line in "".join(output.get("text", "")).splitlines()
        if line.startswith("RESULT")
    )
    assert result == "RESULT ['worker-0', 'worker-1'] " + result.split()[3] + " 499500 " + (
        result.split()[5] + " jupyter"
    )
    assert result.split()[3] in ("worker-0", "worker-1")  # not the notebook's container
    assert result.split()[5] in ("worker-0", "worker-1")


def test_containers_send_telemetry_and_a_job_writes_its_output_folder(
    reachable_server: RunningServer,
) -> None:
    server = reachable_server
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "watched", "spec": {"n_workers": 1}})
    hub.wait("cluster/watched", {"running"}, generation=1, timeout=180)
    wanted = {"host:scheduler", "host:worker-0", "dask:scheduler"}
    deadline = time.monotonic() + 60
    while True:
        current = {r["name"]: r for r in hub.current()}
        found = {s["source"] for s in current.get("watched", {}).get("sources", [])}
        if wanted <= found:
            break
        assert time.monotonic() < deadline, (found, hub.logs("cluster/watched", tail=20))
        time.sleep(1)
    series = hub.telemetry("cluster/watched", "process_memory_bytes", step=1)
    assert {s["source"] for s in series["series"]} >= {"host:scheduler", "host:worker-0"}

    script = (
        "import os, pathlib; pathlib.Path(os.environ['TITAN_OUTPUT_DIR'], 'o').write_text('ok')"
    )
    hub.apply({"type": "job", "name": "writer", "spec": {"command": ["python", "-c", script]}})
    finished(hub, "job/writer")
    assert hub.get("job/writer")["status"] == "succeeded", hub.logs("job/writer")
    written = server.settings.outputs_dir / "admin" / "job" / "writer" / "runs" / "1" / "o"
    assert written.read_text() == "ok"


def finished(hub: Hub, ref: str, timeout: float = 120) -> None:
    """Wait until the job has ended, well or not (``Hub.wait`` raises on failure)."""
    deadline = time.monotonic() + timeout
    while hub.get(ref)["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, hub.history(ref)
        time.sleep(0.3)


def test_a_shared_folder_is_a_named_volume_read_only_where_asked(
    docker_client: Any, docker_prefix: str, start_server: ServerFactory
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix)
    hub = server.hub()
    hub.send_json("POST", "/api/v1/folders", {"name": "data"})
    folders = [{"name": "data", "path": "/data"}]
    write = "echo 42 > /data/x.txt && cat /data/x.txt"
    hub.apply({"type": "job", "name": "w", "spec": {"command": write, "folders": folders}})
    hub.wait("job/w", {"succeeded"}, timeout=120)
    assert (server.settings.folders_dir / "admin" / "data" / "x.txt").read_text() == "42\n"
    read_only = [{**folders[0], "read_only": True}]
    touch = "cat /data/x.txt && touch /data/y.txt"
    hub.apply({"type": "job", "name": "r", "spec": {"command": touch, "folders": read_only}})
    done = hub.wait("job/r", {"succeeded", "failed"}, timeout=120)
    text = hub.logs("job/r")["processes"]["job"]["text"]
    assert done["status"] == "failed" and "42" in text and "Read-only file system" in text
    volumes = [v.name for v in docker_client.volumes.list(filters={"name": docker_prefix})]
    assert f"{docker_prefix}-folder-admin-data" in volumes


def test_secrets_reach_a_container_as_a_variable_and_a_file_only(
    docker_client: Any, docker_prefix: str, start_server: ServerFactory
) -> None:
    server = start_server(backend="docker", docker_prefix=docker_prefix)
    hub = server.hub()
    value = f"s3cret-{docker_prefix}"
    hub.send_json("POST", "/api/v1/secrets", {"name": "db", "value": value})
    secrets = [{"name": "db", "env": "DB_PASSWORD"}, {"name": "db", "file": "db.txt"}]
    check = (
        'test "$DB_PASSWORD" = "$(cat "$TITAN_SECRETS_DIR/db.txt")" '
        '&& test "$(printf %s "$DB_PASSWORD" | sha256sum | cut -c1-8)" = "{}" && echo same'
    )
    import hashlib

    short = hashlib.sha256(value.encode()).hexdigest()[:8]
    recipe = {
        "type": "job",
        "name": "s",
        "spec": {"command": check.format(short), "secrets": secrets},
    }
    hub.apply(recipe)
    done = hub.wait("job/s", {"succeeded", "failed"}, timeout=120)
    text = hub.logs("job/s")["processes"]["job"]["text"]
    assert done["status"] == "succeeded" and "same" in text, text
    assert value not in text and value not in json.dumps(hub.get("job/s"))
    assert value not in json.dumps(hub.history("job/s")) + json.dumps(hub.recipe("job/s"))
