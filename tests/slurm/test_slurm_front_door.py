"""Across Slurm nodes: a Ray cluster on both hosts, and a workspace on one host reached
only through the control plane whose notebook computes on a cluster on the other."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import RunningServer
from tests.integration.test_ray_clusters import driver
from tests.kernels import execute_request
from tests.slurm.conftest import NODES
from tests.slurm.test_slurm_backend import processes

# Each task holds its node's one CPU for a while, so eight of them cannot all run on one
# worker before the other is offered work (quick ones sometimes all landed on one: Ray
# spreads by the resource view it has, which can lag).
RAY_CHECK = """
import json, socket, time, ray
ray.init()
nodes = sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])
@ray.remote(num_cpus=1)
def host():
    time.sleep(0.5)
    return socket.gethostname()
spread = [host.options(scheduling_strategy="SPREAD").remote() for _ in range(8)]
print("RESULT " + json.dumps({"nodes": nodes, "tasks_ran_on": sorted(set(ray.get(spread)))}))
"""


@pytest.mark.ray
def test_a_ray_cluster_spans_both_hosts(slurm_server: RunningServer) -> None:
    pytest.importorskip("ray")
    hub = slurm_server.hub()
    worker = {"nthreads": 1, "memory": "3GiB"}  # one a node: Slurm must use both
    hub.apply(
        {
            "type": "cluster",
            "name": "rays",
            "spec": {"engine": "ray", "n_workers": 2, "worker": worker},
        }
    )
    running = hub.wait("cluster/rays", {"running"}, timeout=400)
    placed = processes(hub, "cluster/rays")
    assert {placed["worker-0"]["node"], placed["worker-1"]["node"]} == {"n1", "n2"}
    token = hub.credentials("cluster/rays")["ray_token"]
    done = driver(running["endpoints"]["ray"], token, RAY_CHECK)  # from this "laptop"

    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(line.removeprefix("RESULT "))
    assert set(result["nodes"]) == set(NODES.values())  # head + 2 workers on both hosts
    assert result["tasks_ran_on"] == ["n1", "n2"]


def run_cell(base: str, ticket: str, code: str) -> str:
    """Run ``code`` in a new kernel through the front door (HTTP and the kernel's
    WebSocket); what it printed."""
    kernel = httpx.post(f"{base}/api/kernels", params={"ticket": ticket}, json={}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    url = base.replace("http://", "ws://") + f"/api/kernels/{kernel.json()['id']}/channels"
    request = execute_request(code)
    message_id = request["header"]["msg_id"]
    printed = []
    with connect(f"{url}?ticket={ticket}") as socket:
        socket.send(json.dumps(request))
        while True:
            reply = json.loads(socket.recv(timeout=180))
            if reply.get("parent_header", {}).get("msg_id") != message_id:
                continue
            kind, content = reply.get("msg_type"), reply.get("content", {})
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                raise AssertionError("\n".join(content.get("traceback", [])))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(printed)


def test_a_notebook_on_one_node_computes_on_a_cluster_on_the_other(
    slurm_server: RunningServer,
) -> None:
    hub = slurm_server.hub()
    big = "3GiB"  # two of these never share a 6000 MB node
    spec = {
        "resources": {"cpu": 1, "memory": big},
        "dask_cluster": {"n_workers": 1, "worker": {"nthreads": 1, "memory": big}},
    }
    hub.apply({"type": "workspace", "name": "nb", "spec": spec})
    running = hub.wait("workspace/nb", {"running"}, timeout=300)
    placed = processes(hub, "workspace/nb")
    assert placed["jupyter"]["node"] != placed["worker-0"]["node"]
    url = running["endpoints"]["jupyter"]
    base, ticket = url.split("/lab?ticket=")
    assert base == f"{slurm_server.settings.api_url}/jupyter/{running['id']}"  # the front door
    assert httpx.get(f"{base}/api/status", timeout=30).status_code == 401
    code = (
        "import socket\n"
        "from distributed import Client\n"
        "client = Client(timeout=60)\n"  # DASK_SCHEDULER_ADDRESS and TLS, as Titan set them
        "client.wait_for_workers(1, timeout=120)\n"
        "print('RAN', socket.gethostname(), client.submit(socket.gethostname, pure=False)"
        ".result(), client.submit(sum, range(1000)).result())\n"
    )
    printed = run_cell(base, ticket, code)
    words = next(line for line in printed.splitlines() if line.startswith("RAN")).split()
    assert words[1] == placed["jupyter"]["node"], printed  # the kernel's host
    assert words[2] == placed["worker-0"]["node"], printed  # the worker's, the other one
    assert words[3] == "499500"
