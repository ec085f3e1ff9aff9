"""The Slurm backend against a real slurmctld and two slurmd on namespace hosts.

Every process is a Slurm job that Slurm places: these tests check where things
landed, Slurm's GPU accounting, its reasons in Titan's status, replacement after
``scancel``, drained nodes, and who the jobs run as.
"""

from __future__ import annotations

import os
import subprocess
import sys

from distributed import Client

from service.client import Hub
from tests.conftest import TEST_ACCOUNT
from tests.integration.conftest import RunningServer
from tests.slurm.conftest import slurm
from tests.waiting import wait_for


def jobs_of(prefix: str) -> dict[str, tuple[str, str, str]]:
    """This test's Slurm jobs not yet ended: name → (id, state, node)."""
    found = {}
    for line in slurm("squeue", "-h", "-o", "%j %i %T %N").splitlines():
        name, job_id, state, *node = line.split()
        if name.startswith(prefix):
            found[name] = (job_id, state, node[0] if node else "")
    return found


def processes(hub: Hub, ref: str) -> dict[str, dict[str, object]]:
    return {p["name"]: p for p in hub.get(ref)["processes"]}


def test_nodes_come_from_slurm(slurm_server: RunningServer) -> None:
    nodes = {n["name"]: n for n in slurm_server.hub().nodes()}
    assert set(nodes) == {"n1", "n2"}
    for name, address in (("n1", "10.77.0.11"), ("n2", "10.77.0.12")):
        assert nodes[name]["address"] == address
        assert nodes[name]["cpus"] == 2
        assert nodes[name]["memory_bytes"] == 6000 * 1024**2
        assert [g["index"] for g in nodes[name]["gpus"]] == [0, 1]
        assert nodes[name]["schedulable"] is True


def test_a_dask_cluster_spans_nodes_and_serves_a_client(
    slurm_server: RunningServer, slurm_prefix: str
) -> None:
    hub = slurm_server.hub()
    # 4 GiB workers: one fits on each 6000 MB node, so Slurm must spread them.
    worker = {"nthreads": 1, "memory": "4GiB"}
    hub.apply({"type": "cluster", "name": "spread", "spec": {"n_workers": 2, "worker": worker}})
    running = hub.wait("cluster/spread", {"running"}, timeout=180)
    placed = processes(hub, "cluster/spread")
    assert {placed["worker-0"]["node"], placed["worker-1"]["node"]} == {"n1", "n2"}
    scheduler = running["endpoints"]["scheduler"]
    head_node = placed["scheduler"]["node"]
    assert scheduler.startswith(f"tls://{ {'n1': '10.77.0.11', 'n2': '10.77.0.12'}[head_node] }:")
    with Client(scheduler, security=hub.cluster_security("cluster/spread"), timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        hosts = {w["host"] for w in client.scheduler_info()["workers"].values()}
        assert hosts == {"10.77.0.11", "10.77.0.12"}
        total = client.submit(sum, range(1000)).result(timeout=60)
        assert total == 499500
        # The jobs are Slurm's, under this test's prefix, one per process.
        assert len(jobs_of(slurm_prefix)) == 3

        # scancel a worker: Titan sees it end and submits a new job for it.
        name = f"{slurm_prefix}-{running['id'][:8]}-worker-1"
        old = jobs_of(slurm_prefix)[name][0]
        slurm("scancel", old)

        def replaced() -> bool:
            now = jobs_of(slurm_prefix).get(name)
            return bool(now and now[0] != old and now[1] == "RUNNING")

        wait_for(replaced, 120)
        hub.wait("cluster/spread", {"running"}, timeout=120)
        client.wait_for_workers(2, timeout=60)
    history = [h["reason"] for h in hub.history("cluster/spread")]
    assert any("cancelled in Slurm" in reason for reason in history), history


def test_slurm_counts_gpus_and_titan_shows_why_a_job_waits(
    slurm_server: RunningServer, slurm_prefix: str
) -> None:
    hub = slurm_server.hub()
    hold = {"command": "sleep 600", "resources": {"gpu": 2, "cpu": 1, "memory": "200MiB"}}
    for name in ("hold-a", "hold-b"):  # all four GPUs of the two nodes
        hub.apply({"type": "job", "name": name, "spec": hold})
    for name in ("hold-a", "hold-b"):
        hub.wait(f"job/{name}", {"running"}, timeout=120)
    held = {processes(hub, f"job/{n}")["job"]["node"] for n in ("hold-a", "hold-b")}
    assert held == {"n1", "n2"}
    gpus = processes(hub, "job/hold-a")["job"]["gpus"]
    node = processes(hub, "job/hold-a")["job"]["node"]
    assert sorted(gpus) == [f"{node}/gpu0", f"{node}/gpu1"]  # what Slurm bound, recorded

    spec = {"command": "echo gpus=$CUDA_VISIBLE_DEVICES", "resources": {"gpu": 1, "cpu": 1}}
    hub.apply({"type": "job", "name": "third", "spec": spec})

    def queued() -> dict[str, object] | None:
        third = hub.get("job/third")
        return third if "queued in slurm" in third["status_reason"] else None

    waiting = wait_for(queued, 60)
    assert waiting["status"] == "pending", waiting  # type: ignore[index]
    assert "queued in slurm: Resources" in str(waiting["status_reason"]), waiting  # type: ignore[index]
    nodes = {n["name"]: n for n in hub.nodes()}
    assert sum(n["allocated"]["gpus"] for n in nodes.values()) == 4

    hub.delete("job/hold-a")  # frees two GPUs: Slurm starts the waiting job there
    done = hub.wait("job/third", {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    logs = hub.logs("job/third")["processes"]["job"]["text"]
    assert "gpus=0" in logs or "gpus=1" in logs, logs


def test_jobs_run_as_their_person_and_cannot_read_the_control_plane(
    slurm_server: RunningServer,
) -> None:
    hub = slurm_server.hub()
    secret = slurm_server.settings.admin_token_file
    database = slurm_server.settings.data_dir / "titan.db"
    command = f"id -un; cat {secret} || echo refused; cat {database} || echo refused"
    hub.apply({"type": "job", "name": "who", "spec": {"command": command}})
    done = hub.wait("job/who", {"succeeded", "failed"}, timeout=120)
    text = hub.logs("job/who")["processes"]["job"]["text"]
    assert TEST_ACCOUNT in text.splitlines(), text  # what `id -un` printed
    assert slurm_server.token not in text
    assert text.splitlines().count("refused") == 2, text
    assert done["status"] == "succeeded"


def test_a_drained_node_shows_and_gets_no_new_work(
    slurm_server: RunningServer, slurm_prefix: str
) -> None:
    hub = slurm_server.hub()
    slurm("scontrol", "update", "nodename=n2", "state=drain", "reason=titan test drain")
    try:

        def drained() -> dict[str, object] | None:
            node = next(n for n in hub.nodes() if n["name"] == "n2")
            return node if not node["schedulable"] else None

        node = wait_for(drained, 30)
        assert "drain" in node["state"], node  # type: ignore[index]
        assert str(node["reason"]).startswith("titan test drain"), node  # type: ignore[index]
        spec = {"command": "sleep 1", "resources": {"cpu": 1, "memory": "100MiB"}}
        for index in range(3):
            hub.apply({"type": "job", "name": f"small-{index}", "spec": spec})
        for index in range(3):
            hub.wait(f"job/small-{index}", {"running", "succeeded"}, timeout=120)
        landed = {processes(hub, f"job/small-{i}")["job"]["node"] for i in range(3)}
        assert landed == {"n1"}
        cli = subprocess.run(
            [sys.executable, "-m", "service.cli", "nodes"],
            env={
                **os.environ,
                "TITAN_URL": slurm_server.url,
                "TITAN_TOKEN": slurm_server.token,
                "COLUMNS": "200",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert "n2" in cli.stdout and "drain" in cli.stdout, cli.stdout
    finally:
        slurm("scontrol", "update", "nodename=n2", "state=resume")


def test_a_job_slurm_refuses_says_why_in_slurms_words(slurm_server: RunningServer) -> None:
    hub = slurm_server.hub()
    spec = {"command": "true", "slurm": {"partition": "gpu"}}
    hub.apply({"type": "job", "name": "nowhere", "spec": spec})

    def failed() -> dict[str, object] | None:
        job = hub.get("job/nowhere")
        return job if job["status"] == "failed" else None

    job = wait_for(failed, 60)
    assert "Slurm refused the job: invalid partition specified: gpu" in str(
        job["status_reason"]  # type: ignore[index]
    )
    assert processes(hub, "job/nowhere") == {}  # nothing left half made
