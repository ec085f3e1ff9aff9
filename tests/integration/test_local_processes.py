"""Real processes on the local backend: Dask clusters, JupyterLab, jobs, restarts."""

from __future__ import annotations

import json
import os
import pwd
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from distributed import Client
from sqlalchemy import create_engine, select

from service.backends.nodes import local_gpus
from service.database.models import Process
from tests.conftest import TEST_ACCOUNT
from tests.integration.conftest import RunningServer, ServerFactory

pytestmark = pytest.mark.slow


def cluster(name: str = "c", **spec: Any) -> dict[str, Any]:
    return {"type": "cluster", "name": name, "spec": {"n_workers": 2, **spec}}


def pids(server: RunningServer, ref: str) -> dict[str, int]:
    """The pid of each process of ``ref``, from the handles the store recorded."""
    resource_id = server.hub().get(ref)["id"]
    engine = create_engine(server.settings.sqlalchemy_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Process.name, Process.handle).where(Process.resource_id == resource_id)
        ).all()
    engine.dispose()
    return {name: int(handle["pid"]) for name, handle in rows if handle}


def test_a_cluster_runs_real_dask_and_scales_without_restarting_the_scheduler(
    server: RunningServer,
) -> None:
    hub = server.hub()
    hub.apply(cluster())
    running = hub.wait("cluster/c", {"running"}, timeout=120)
    address = running["endpoints"]["scheduler"]
    assert address.startswith("tls://127.0.0.1:")
    assert running["endpoints"]["dashboard"].startswith("http://127.0.0.1:")
    before = pids(server, "cluster/c")
    with Client(address, security=hub.cluster_security("cluster/c"), timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
        assert client.submit(sum, [1, 2, 3]).result() == 6
        names = sorted(w["name"] for w in client.scheduler_info()["workers"].values())
        assert names == ["worker-0", "worker-1"]
        hub.apply(cluster(n_workers=4))
        client.wait_for_workers(4, timeout=60)
        hub.wait("cluster/c", {"running"}, generation=2)
    after = pids(server, "cluster/c")
    assert after["scheduler"] == before["scheduler"]
    assert after["worker-0"] == before["worker-0"]
    assert set(after) == {"scheduler", "worker-0", "worker-1", "worker-2", "worker-3"}
    hub.apply(cluster(n_workers=4, environment_variables={"MODE": "b"}))
    hub.wait("cluster/c", {"running"}, generation=3)
    restarted = pids(server, "cluster/c")
    assert len(restarted) == 5 and restarted["scheduler"] != before["scheduler"]
    assert restarted["worker-0"] != before["worker-0"]
    hub.stop("cluster/c")
    hub.wait("cluster/c", {"stopped"})
    assert hub.get("cluster/c")["processes"] == []
    for pid in after.values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_a_job_gets_its_environment_and_a_token_for_itself_only(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "job", "name": "other", "spec": {"command": "true"}})
    script = (
        "import os, json, httpx;"
        "h={'Authorization': 'Bearer '+os.environ['TITAN_TOKEN']};"
        "u=os.environ['TITAN_URL']+'/api/v1/resources/';"
        "own=httpx.get(u+'job/probe', headers=h).status_code;"
        "other=httpx.get(u+'job/other', headers=h).status_code;"
        "r=os.environ['TITAN_URL']+'/api/v1/recipes';"
        "apply=httpx.put(r, headers=h, json={}).status_code;"
        "print(json.dumps({'resource': os.environ['TITAN_RESOURCE'], 'own': own, 'other': other,"
        " 'apply': apply, 'dask': os.environ.get('DASK_SCHEDULER_ADDRESS'),"
        " 'greeting': os.environ['GREETING'], 'cwd': os.getcwd()}))"
    )
    workdir = server.settings.user_root / "work"  # where the job's OS account may write
    workdir.mkdir()
    account = pwd.getpwnam(TEST_ACCOUNT)
    os.chown(workdir, account.pw_uid, account.pw_gid)
    hub.apply(
        {
            "type": "job",
            "name": "probe",
            "spec": {
                "command": [sys.executable, "-c", script],
                "environment_variables": {"GREETING": "hi"},
                "start_script": "echo preparing > prepared.txt",
                "working_directory": str(workdir),
            },
        }
    )
    done = hub.wait("job/probe", {"succeeded"}, timeout=60)
    assert done["processes"][0]["exit_code"] == 0 and done["target"] == "stopped"
    assert "job exited with code 0 after" in done["status_reason"]
    output = hub.logs("job/probe", "job")["processes"]["job"]["text"]
    seen = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    assert seen == {
        "resource": "admin/job/probe",
        "own": 200,
        "other": 403,
        "apply": 403,
        "dask": None,
        "greeting": "hi",
        "cwd": str(workdir),
    }
    assert (workdir / "prepared.txt").read_text() == "preparing\n"
    # Its token died with it.
    assert hub.get("job/probe")["processes"][0]["state"] == "exited"


def test_a_failing_job_records_its_exit_code(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "job", "name": "bad", "spec": {"command": "echo oops >&2; exit 7"}})
    with pytest.raises(Exception, match="job exited with code 7"):
        hub.wait("job/bad", {"succeeded"}, timeout=60)
    resource = hub.get("job/bad")
    assert resource["status"] == "failed" and resource["processes"][0]["exit_code"] == 7
    assert "oops" in hub.logs("job/bad", tail=5)["processes"]["job"]["text"]


def test_a_command_that_does_not_exist_ends_with_one_line_and_127(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "job", "name": "typo", "spec": {"command": ["no-such-binary", "-x"]}})
    with pytest.raises(Exception, match="code 127"):
        hub.wait("job/typo", {"succeeded"}, timeout=60)
    resource = hub.get("job/typo")
    assert resource["status"] == "failed" and resource["processes"][0]["exit_code"] == 127
    text = hub.logs("job/typo", tail=20)["processes"]["job"]["text"]
    assert "command not found: no-such-binary" in text
    assert "Traceback" not in text and "FileNotFoundError" not in text


def test_a_workspace_runs_jupyterlab_behind_the_front_door(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "workspace", "name": "lab", "spec": {"dask_cluster": {"n_workers": 1}}})
    running = hub.wait("workspace/lab", {"running"}, timeout=180)
    url = running["endpoints"]["jupyter"]
    base, ticket = url.split("/lab?ticket=")
    assert base == f"{server.url}/jupyter/{running['id']}"  # the control plane's address
    with httpx.Client() as browser:  # the link's ticket becomes a cookie for this workspace
        assert browser.get(f"{base}/api/status", params={"ticket": ticket}).status_code == 200
        assert browser.get(f"{base}/api/status").status_code == 200
        page = browser.get(f"{base}/lab")
        assert page.status_code == 200 and "JupyterLab" in page.text
    admin = {"Authorization": f"Bearer {server.token}"}
    assert httpx.get(f"{base}/api/status", headers=admin).status_code == 200
    assert httpx.get(f"{base}/api/status").status_code == 401
    assert httpx.get(f"{base}/api/status", params={"ticket": "x" + ticket[1:]}).status_code == 401
    # JupyterLab itself still wants its own token, which users never need.
    direct = next(p for p in running["processes"] if p["name"] == "jupyter")["endpoints"]
    direct_status = httpx.get(f"{direct['jupyter']}jupyter/{running['id']}/api/status")
    assert direct_status.status_code in (401, 403)
    assert {p["name"] for p in running["processes"]} == {"jupyter", "scheduler", "worker-0"}
    # The notebook's folder persists across restarts of the workspace.
    home = server.settings.user_root / "home" / running["id"]
    assert home.is_dir()


def test_a_killed_worker_is_replaced_and_the_cluster_never_shows_failed(
    server: RunningServer,
) -> None:
    hub = server.hub()
    hub.apply(cluster(n_workers=1))
    hub.wait("cluster/c", {"running"}, timeout=120)
    seen = len(hub.history("cluster/c"))
    before = pids(server, "cluster/c")
    os.killpg(before["worker-0"], signal.SIGKILL)

    def replaced() -> bool:  # the history keeps every change: polling misses none
        repair = hub.history("cluster/c")[seen:]
        return (
            bool(repair)
            and repair[-1]["to"] == "running"
            and pids(server, "cluster/c").get("worker-0") not in (None, before["worker-0"])
        )

    _eventually(replaced, timeout=10)  # a killed worker is replaced within 10 s
    repair = hub.history("cluster/c")[seen:]
    assert "failed" not in [e["to"] for e in repair], repair
    degraded = [e["reason"] for e in repair if e["to"] == "degraded"]
    assert degraded and degraded[0].startswith("worker-0 (exit code -9) exited unexpectedly")
    assert pids(server, "cluster/c")["scheduler"] == before["scheduler"]


def test_a_restarted_control_plane_keeps_what_runs(start_server: ServerFactory) -> None:
    first = start_server()
    hub = first.hub()
    hub.apply(cluster(n_workers=1))
    running = hub.wait("cluster/c", {"running"}, timeout=120)
    before = pids(first, "cluster/c")
    hub.apply({"type": "job", "name": "sleeper", "spec": {"command": "sleep 3; exit 4"}})
    hub.wait("job/sleeper", {"running"}, timeout=60)
    first.stop()  # the control plane goes away; its processes do not
    assert all(psutil.pid_exists(pid) for pid in before.values())
    os.killpg(before["worker-0"], signal.SIGKILL)  # and one dies while it is down
    second = start_server()
    hub = second.hub()
    assert hub.get("cluster/c")["endpoints"]["scheduler"] == running["endpoints"]["scheduler"]

    def recovered() -> bool:
        current = pids(second, "cluster/c")
        return hub.get("cluster/c")["status"] == "running" and current.get("worker-0") not in (
            None,
            before["worker-0"],
        )

    _eventually(recovered, timeout=60)
    assert pids(second, "cluster/c")["scheduler"] == before["scheduler"]
    # The job finished while nobody watched; its exit code still arrives.
    _eventually(lambda: hub.get("job/sleeper")["status"] == "failed", timeout=30)
    assert hub.get("job/sleeper")["processes"][0]["exit_code"] == 4


def _eventually(check: Any, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{check.__name__} did not become true in {timeout}s")
        time.sleep(0.2)


@pytest.mark.skipif(bool(local_gpus()), reason="this machine has GPUs")
def test_a_gpu_cluster_is_refused_at_apply_on_a_machine_without_gpus(
    server: RunningServer,
) -> None:
    recipe = json.loads((Path(__file__).parents[2] / "recipes" / "gpu-cluster.json").read_text())
    answer = server.request("PUT", "/api/v1/recipes", json=recipe)
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert "fits no node: worker-0 asks for 1 GPU(s), but the node with the most" in message
    assert "has 0" in message
    assert server.hub().list() == []  # nothing half-made


def test_a_recipe_larger_than_every_node_is_refused_with_the_figures(
    server: RunningServer,
) -> None:
    huge = {"type": "cluster", "name": "huge", "spec": {"worker": {"memory": "500GiB"}}}
    answer = server.request("PUT", "/api/v1/recipes", json=huge)
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert "worker-0 asks for 500 GiB of memory, but the largest node" in message
    assert "memory overcommit 1x" in message
    planned = server.request("POST", "/api/v1/recipes/plan", json=huge)
    assert planned.status_code == 422 and "fits no node" in planned.text  # plan says so too
    assert server.hub().list() == []
