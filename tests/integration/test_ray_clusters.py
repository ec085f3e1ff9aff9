"""Ray clusters on the local backend: real ``ray start`` nodes run by Titan.

Each test starts one small cluster (a head and one or two worker nodes) and
checks one promise of the Ray engine through the API, Ray's own client, Jobs
API and dashboard, and the processes themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from service.database.models import Process
from tests.integration.conftest import RunningServer, ServerFactory
from tests.integration.test_restart_safety import running_server_process
from workers.training.ray_train import lost_session

pytestmark = [pytest.mark.slow, pytest.mark.ray]

DRIVER = """
import ray
ray.init()
nodes = [n for n in ray.nodes() if n["Alive"]]
print("nodes", len(nodes))
print("answer", ray.get(ray.remote(lambda: 6 * 7).remote()))
"""


@pytest.fixture
def ray_server(start_server: ServerFactory) -> RunningServer:
    """A server whose starts may take as long as a Ray head does on a busy 2-core machine."""
    return start_server(start_timeout_seconds=240)


def ray_cluster(name: str = "r", **spec: Any) -> dict[str, Any]:
    body = {"engine": "ray", "n_workers": 1, "worker": {"nthreads": 1, "memory": "1GiB"}}
    return {"type": "cluster", "name": name, "spec": {**body, **spec}}


def client_server_logs() -> str:
    """The last lines of every Ray Client session server's error log on this machine
    (the nodes' folders are /tmp/titan-*): why a driver could not connect."""
    found = []
    for path in sorted(Path("/tmp").glob("titan-*/session_*/logs/ray_client_server_*.err")):
        found.append(
            f"== {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:])
        )
    return "\n".join(found)


def driver(address: str, token: str | None, code: str = DRIVER) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a Ray driver of ``address`` (with ``token``, or none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TITAN_"))}
    env.update({"RAY_ADDRESS": address, "RAY_USAGE_STATS_ENABLED": "0"})
    if token is not None:
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180
    )
    if lost_session(done.stderr):  # as the training driver, the tests connect again once
        # Ray's client proxy sometimes loses the session server it has just started (its
        # log stays empty; seen on a cluster's first connection): Ray's own advice is to
        # connect again, as a user would. Once only: a second failure is a failure.
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180
        )
    return done


def sees_nodes(address: str, token: str, count: int, timeout: float = 120) -> None:
    """Wait until a driver of ``address`` counts ``count`` alive nodes: Ray marks a killed
    node dead only after its health checks time out, and a new one alive once it has
    joined, so right after a replacement it may count one more or one fewer."""
    deadline = time.monotonic() + timeout
    while True:
        done = driver(address, token)
        if f"nodes {count}\n" in done.stdout:
            return
        assert time.monotonic() < deadline, done.stdout + done.stderr[-3000:]
        time.sleep(2)


def succeeded(jobs: Any, job: str, timeout: float = 180) -> str:
    """The logs of Ray job ``job`` once it has succeeded (it must, within ``timeout``)."""
    from ray.job_submission import JobStatus

    deadline = time.monotonic() + timeout
    while jobs.get_job_status(job) not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        assert time.monotonic() < deadline, jobs.get_job_logs(job)
        time.sleep(1)
    assert jobs.get_job_status(job) == JobStatus.SUCCEEDED, jobs.get_job_logs(job)
    return str(jobs.get_job_logs(job))


def recorded(url: str, resource_id: str) -> dict[str, Any]:
    """Each process's stored handle and endpoints (what the API never shows)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Process.name, Process.handle, Process.endpoints).where(
                Process.resource_id == resource_id
            )
        ).all()
    engine.dispose()
    return {name: {"handle": handle, "endpoints": endpoints} for name, handle, endpoints in rows}


def test_a_ray_cluster_serves_only_holders_of_its_token_and_its_dashboard_only_through_titan(
    ray_server: RunningServer,
) -> None:
    hub = ray_server.hub()
    hub.apply(ray_cluster())
    running = hub.wait("cluster/r", {"running"}, timeout=300)
    endpoints = running["endpoints"]
    assert endpoints["ray"].startswith("ray://127.0.0.1:")
    credentials = hub.credentials("cluster/r")
    assert credentials["engine"] == "ray" and credentials["address"] == endpoints["ray"]
    token = credentials["ray_token"]
    done = driver(endpoints["ray"], token)
    assert "answer 42" in done.stdout, done.stdout + done.stderr + client_server_logs()
    assert "nodes 2" in done.stdout  # the head and worker-0
    refused = driver(endpoints["ray"], "0" * 64)
    assert refused.returncode != 0 and "answer" not in refused.stdout

    # The dashboard listens on loopback and answers nothing without the cluster's token.
    upstream = recorded(ray_server.settings.sqlalchemy_url, running["id"])["head"]["endpoints"]
    assert upstream["dashboard"].startswith("http://127.0.0.1:")
    assert httpx.get(upstream["dashboard"] + "/api/version").status_code == 401
    # Through the control plane: the link's ticket reads, Titan's token reads and acts.
    link = endpoints["dashboard"]
    assert link.startswith(f"{ray_server.url}/dashboards/{running['id']}/?ticket=")
    page = httpx.get(link)
    assert page.status_code == 200 and "<html" in page.text.lower()
    base = f"{ray_server.url}/dashboards/{running['id']}"
    assert httpx.get(f"{base}/api/version").status_code == 401
    ticket = link.split("ticket=", 1)[1]
    version = httpx.get(f"{base}/api/version", params={"ticket": ticket}).json()
    assert version["ray_version"].startswith("2.")
    assert httpx.post(f"{base}/api/jobs/", params={"ticket": ticket}, json={}).status_code == 401

    # Ray's Jobs API through the control plane, with the user's Titan token only.
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(base, headers={"Authorization": f"Bearer {ray_server.token}"})
    code = "import ray; ray.init(); print('job says', ray.get(ray.remote(lambda: 7).remote()))"
    job = jobs.submit_job(entrypoint=f'{sys.executable} -c "{code}"')
    assert "job says 7" in succeeded(jobs, job)


def test_a_dead_worker_node_is_replaced_and_scale_down_keeps_the_head(
    ray_server: RunningServer,
) -> None:
    hub = ray_server.hub()
    hub.apply(ray_cluster(n_workers=2))
    running = hub.wait("cluster/r", {"running"}, timeout=300)
    token = hub.credentials("cluster/r")["ray_token"]
    before = recorded(ray_server.settings.sqlalchemy_url, running["id"])
    os.killpg(int(before["worker-1"]["handle"]["pid"]), signal.SIGKILL)
    hub.wait("cluster/r", {"degraded"}, timeout=60)
    hub.wait("cluster/r", {"running"}, timeout=300)
    after = recorded(ray_server.settings.sqlalchemy_url, running["id"])
    assert after["worker-1"]["handle"]["pid"] != before["worker-1"]["handle"]["pid"]
    assert after["head"]["handle"]["pid"] == before["head"]["handle"]["pid"]
    sees_nodes(running["endpoints"]["ray"], token, 3)
    # Down to one worker node: the head and worker-0 keep running, untouched.
    hub.apply(ray_cluster(n_workers=1))
    hub.wait("cluster/r", {"running"}, generation=2, timeout=120)
    final = recorded(ray_server.settings.sqlalchemy_url, running["id"])
    assert sorted(final) == ["head", "worker-0"]
    assert final["worker-0"]["handle"]["pid"] == before["worker-0"]["handle"]["pid"]
    sees_nodes(running["endpoints"]["ray"], token, 2)


def test_a_ray_cluster_and_a_dask_cluster_run_side_by_side(ray_server: RunningServer) -> None:
    hub = ray_server.hub()
    hub.apply(ray_cluster())
    hub.apply({"type": "cluster", "name": "d", "spec": {"n_workers": 1}})
    dask = hub.wait("cluster/d", {"running"}, timeout=120)
    ray_running = hub.wait("cluster/r", {"running"}, timeout=300)
    assert dask["endpoints"]["scheduler"].startswith("tls://")
    done = driver(ray_running["endpoints"]["ray"], hub.credentials("cluster/r")["ray_token"])
    assert "answer 42" in done.stdout, done.stderr + client_server_logs()
    from distributed import Client

    security = hub.cluster_security("cluster/d")
    with Client(dask["endpoints"]["scheduler"], security=security, timeout="30s") as client:
        assert client.submit(sum, [1, 2]).result() == 3


def test_restart_after_kill_9_adopts_the_ray_nodes(tmp_path: Path) -> None:
    env = {"TITAN_START_TIMEOUT_SECONDS": "240"}
    with running_server_process(tmp_path / "data", env) as server:
        hub = server.start()
        hub.apply(ray_cluster())
        running = hub.wait("cluster/r", {"running"}, timeout=300)
        url = f"sqlite:///{tmp_path / 'data' / 'titan.db'}"
        before = recorded(url, running["id"])
        server.kill()
        hub = server.start()
        time.sleep(3)  # a few reconcile passes
        again = hub.wait("cluster/r", {"running"}, timeout=120)
        after = recorded(url, running["id"])
        assert {n: p["handle"]["pid"] for n, p in after.items()} == {
            n: p["handle"]["pid"] for n, p in before.items()
        }
        token = hub.credentials("cluster/r")["ray_token"]
        assert "answer 42" in driver(again["endpoints"]["ray"], token).stdout


CLIENT_DRIVER = """
import sys
import ray
from service.client import RayCluster
name = sys.argv[1]
cluster = RayCluster.attached() if name == "--attached" else RayCluster.from_name(name)
with cluster:  # closing one found by name or attached only disconnects
    cluster.init()
    print("nodes", len([n for n in ray.nodes() if n["Alive"]]))
    print("answer", ray.get(ray.remote(lambda: 6 * 7).remote()))
"""


def client_driver(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run CLIENT_DRIVER with Titan's variables from ``env`` and no Ray token settings
    (``RayCluster.init`` sets them), in its own process: Ray keeps state per process."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TITAN_"))}
    base.update({"RAY_USAGE_STATS_ENABLED": "0", **env})
    return subprocess.run(
        [sys.executable, "-c", CLIENT_DRIVER, *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=180,
    )


def test_the_ray_cluster_client_creates_scales_and_submits_jobs(
    ray_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from service.client import NotFoundError, RayCluster, TitanClientError
    from tests.integration.test_cli import titan

    for key in ("TITAN_RESOURCE", "RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(TitanClientError, match="RAY_ADDRESS, RAY_AUTH_TOKEN_PATH"):
        RayCluster.attached()

    worker = {"nthreads": 1, "memory": "1GiB"}
    with RayCluster(
        "rc", url=ray_server.url, token=ray_server.token, n_workers=1, worker=worker
    ) as cluster:
        assert cluster.address.startswith("ray://127.0.0.1:")
        link = f"{ray_server.url}/dashboards/{cluster.resource['id']}/?ticket="
        assert cluster.dashboard_link.startswith(link)
        # `titan get` shows every endpoint of a Ray cluster, each on one whole line.
        shown = titan(ray_server, "get", "cluster/rc").stdout.splitlines()
        assert f"ray: {cluster.address}" in shown
        assert any(line.startswith("gcs: 127.0.0.1:") for line in shown)
        assert f"dashboard: {cluster.dashboard_link}" in shown

        titan_env = {"TITAN_URL": ray_server.url, "TITAN_TOKEN": ray_server.token}
        done = client_driver(titan_env, "rc")
        assert "answer 42" in done.stdout, done.stdout + done.stderr
        assert "nodes 2" in done.stdout  # the head and worker-0

        # The Jobs API through the control plane, with the Titan token only.
        code = "import ray; ray.init(); print('job says', ray.get(ray.remote(lambda: 7).remote()))"
        job = cluster.submit_job(f'{sys.executable} -c "{code}"')
        jobs = cluster.jobs()
        assert "job says 7" in succeeded(jobs, job)

        cluster.scale(2)
        ray_server.hub().wait("cluster/rc", {"running"}, generation=2, timeout=300)
        # As in a workspace with this cluster attached: Titan's variables and a token file.
        token_file = tmp_path / "ray-token"
        token_file.write_text(cluster.token)
        attached = {
            **titan_env,
            "TITAN_RESOURCE": f"{cluster.ref.owner}/cluster/rc",
            "RAY_ADDRESS": cluster.address,
            "RAY_AUTH_TOKEN_PATH": str(token_file),
        }
        done = client_driver(attached, "--attached")
        assert "nodes 3" in done.stdout, done.stdout + done.stderr
    with pytest.raises(NotFoundError):
        ray_server.hub().get("cluster/rc")


BUSY = """
import time, ray
ray.init()

@ray.remote(num_cpus=1)
def work(seconds):
    time.sleep(seconds)
    return seconds

print("worked", sum(ray.get([work.remote(SECONDS) for _ in range(TASKS)])))
"""


def test_an_idle_ray_cluster_is_reclaimed_and_a_busy_one_is_not(
    ray_server: RunningServer,
) -> None:
    hub = ray_server.hub()
    hub.apply(ray_cluster(auto_shutoff="20s"))
    running = hub.wait("cluster/r", {"running"}, timeout=300)
    token = hub.credentials("cluster/r")["ray_token"]
    # 40 s of Ray tasks: twice the shutoff, yet never idle, so never stopped.
    busy = driver(
        running["endpoints"]["ray"], token, BUSY.replace("SECONDS", "10").replace("TASKS", "4")
    )
    assert "worked 40" in busy.stdout, busy.stdout + busy.stderr
    assert hub.get("cluster/r")["status"] == "running"
    samples = hub.telemetry("cluster/r", "ray_tasks_running", start=time.time() - 600, step=1)
    by_source = {s["source"]: s["points"] for s in samples["series"]}
    assert any(value >= 1 for _, value in by_source["ray"])  # the head's sampler saw them
    stopped = hub.wait("cluster/r", {"stopped"}, timeout=120)
    assert stopped["status_reason"].startswith("idle for ")
    assert stopped["status_reason"].endswith("no Ray tasks, actors or jobs")


def test_adaptive_ray_clusters_follow_pending_demand(start_server: ServerFactory) -> None:
    server = start_server(
        start_timeout_seconds=240, adaptive_interval_seconds=1, adaptive_wait_count=3
    )
    hub = server.hub()
    bounds = {"minimum": 1, "maximum": 2}
    hub.apply(ray_cluster(n_workers=1, adaptive=bounds))
    running = hub.wait("cluster/r", {"running"}, timeout=300)
    token = hub.credentials("cluster/r")["ray_token"]
    # Four 1-CPU tasks of 25 s on one 1-CPU node: three wait, so a second node is asked for.
    load = driver(
        running["endpoints"]["ray"], token, BUSY.replace("SECONDS", "25").replace("TASKS", "4")
    )
    assert "worked 100" in load.stdout, load.stdout + load.stderr
    reasons = [e["reason"] for e in hub.history("cluster/r")]
    up = [r for r in reasons if r.startswith("adaptive: scaling up from 1 to 2 workers")]
    assert up, reasons
    # Idle again: back to the minimum, never below.
    deadline = time.monotonic() + 120
    while len([p for p in hub.get("cluster/r")["processes"] if p["name"] != "head"]) > 1:
        assert time.monotonic() < deadline, hub.history("cluster/r")
        time.sleep(1)
    down = [e["reason"] for e in hub.history("cluster/r") if "scaling down" in e["reason"]]
    assert down and "retiring idle" in down[-1]


def test_the_ray_training_recipe_trains_on_its_ray_cluster_with_telemetry(
    ray_server: RunningServer,
) -> None:
    import json

    hub = ray_server.hub()
    recipe = json.loads(
        (Path(__file__).parents[2] / "recipes" / "train-xgboost-ray-cpu.json").read_text()
    )
    command = recipe["spec"]["command"]
    assert command[:5] == ["python", "-m", "workers.training", "--engine", "ray"]
    command[0] = sys.executable  # the interpreter Titan is installed in
    command[command.index("--rows") + 1] = "50000"  # small: the cluster's start dominates
    hub.apply(recipe)
    ref = "job/train-xgboost-ray-cpu"
    done = hub.wait(ref, {"succeeded"}, timeout=900)
    assert "job exited with code 0" in done["status_reason"]
    text = hub.logs(ref, "job")["processes"]["job"]["text"]
    result = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
    assert result["device"] == "cpu" and result["rows"] == 50_000
    assert result["rmse"] < result["baseline_rmse"] / 2
    folder = (
        ray_server.settings.outputs_dir / "admin" / "job" / "train-xgboost-ray-cpu" / "runs" / "1"
    )
    assert result["model"] == str(folder / "model.json")
    assert json.loads((folder / "metrics.json").read_text())["rmse"] == result["rmse"]
    series = hub.telemetry(ref, "training_rmse", start=time.time() - 1800, step=1)["series"]
    [training] = [s for s in series if s["source"] == "training"]
    assert training["points"][-1][1] == pytest.approx(result["rmse"])
    # Every node of its cluster was sampled while it ran, the head's Ray activity too.
    cpu = hub.telemetry(ref, "host_cpu_percent", start=time.time() - 1800, step=1)["series"]
    assert {"host:head", "host:worker-0", "host:worker-1", "host:job"} <= {s["source"] for s in cpu}
