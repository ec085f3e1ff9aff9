"""Alerts fire and resolve from real samples; idle resources are stopped, busy ones are not."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from distributed import Client
from websockets.sync.client import connect

from tests.integration.conftest import RunningServer, ServerFactory
from tests.integration.test_cli import titan
from tests.integration.test_telemetry import wait_for
from tests.kernels import execute_request

pytestmark = pytest.mark.slow


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver on 127.0.0.1 that keeps every JSON body POSTed to it."""
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{receiver.server_port}/hook", received
    receiver.shutdown()
    receiver.server_close()


def test_a_rule_fires_while_tasks_run_and_resolves_after(
    start_server: ServerFactory, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    server = start_server(alert_webhook_url=url)
    rule = {"metric": "dask_tasks_processing", "comparison": ">=", "threshold": 1, "for_seconds": 1}
    put = server.request("PUT", "/api/v1/alerts/rules/tasks-running", json=rule)
    assert put.status_code == 200, put.text
    bad = server.request("PUT", "/api/v1/alerts/rules/x", json={**rule, "comparison": "=="})
    assert bad.status_code == 422 and "comparison" in bad.text
    fixed = server.request("DELETE", "/api/v1/alerts/rules/gpu-hot")
    assert fixed.status_code == 409 and "TITAN_ALERT_RULES" in fixed.text
    rules = {r["name"]: r["origin"] for r in server.request("GET", "/api/v1/alerts/rules").json()}
    assert rules == {
        "gpu-hot": "settings",
        "gpu-memory-full": "settings",
        "silent": "settings",
        "tasks-running": "api",
    }

    hub = server.hub()
    hub.apply({"type": "cluster", "name": "c", "spec": {"n_workers": 1}})
    running = hub.wait("cluster/c", {"running"}, timeout=90)
    with Client(
        running["endpoints"]["scheduler"], security=hub.cluster_security("cluster/c"), timeout="30s"
    ) as client:
        client.wait_for_workers(1, timeout=60)
        client.submit(time.sleep, 5).result()

    events = wait_for(
        lambda: [
            e for e in hub.alerts() if e["rule"] == "tasks-running" and e["state"] == "resolved"
        ],
        timeout=30,
    )
    [event] = events
    assert event["resource"] == "admin/cluster/c" and event["source"] == "dask:scheduler"
    assert "dask_tasks_processing >= 1 for 1s" in event["message"]
    assert "resolved: dask_tasks_processing is 0 now" in event["message"]
    states = wait_for(
        lambda: (
            [n["state"] for n in received if n["rule"] == "tasks-running"][:2]
            if len(received) >= 2
            else None
        ),
        timeout=15,
    )
    assert states == ["firing", "resolved"]
    assert all(n["resource"] == "admin/cluster/c" for n in received if n["rule"] == "tasks-running")
    printed = titan(server, "alerts", env={"COLUMNS": "250"})
    assert printed.returncode == 0 and "tasks-running" in printed.stdout
    assert not [e for e in hub.alerts("firing") if e["rule"] == "silent"]  # samples keep coming


def test_an_idle_cluster_is_stopped_and_a_busy_one_is_not(server: RunningServer) -> None:
    hub = server.hub()
    for name in ("idle", "busy"):
        spec = {"n_workers": 1, "auto_shutoff": "6s"}
        hub.apply({"type": "cluster", "name": name, "spec": spec})
    busy = hub.wait("cluster/busy", {"running"}, timeout=90)
    with Client(
        busy["endpoints"]["scheduler"], security=hub.cluster_security("cluster/busy"), timeout="30s"
    ) as client:
        client.wait_for_workers(1, timeout=60)
        started = time.monotonic()
        for _ in range(15):  # a second of work at a time, for 15 s: never 6 s idle
            client.submit(time.sleep, 1, pure=False).result()
        assert hub.get("cluster/busy")["status"] == "running"
        assert time.monotonic() - started >= 14
        stopped = hub.get("cluster/idle")
        assert stopped["status"] == "stopped" and stopped["target"] == "stopped"
        assert stopped["status_reason"].startswith("idle for ")
        assert "GPU utilisation ≤ 2 %" in stopped["status_reason"]
        assert stopped["status_reason"].endswith("no Dask tasks")
    # once its work ends, the busy one is idle too
    hub.wait("cluster/busy", {"stopped"}, timeout=30)
    reclaims = server.request("GET", "/api/v1/reclaims").json()
    assert {r["resource"] for r in reclaims["reclaims"]} == {
        "admin/cluster/idle",
        "admin/cluster/busy",
    }
    assert reclaims["gpu_seconds"] == 0  # CPU clusters hold no GPU
    again = hub.start("cluster/idle")  # a user's start clears the idle stop
    assert again["target"] == "running"
    hub.wait("cluster/idle", {"running"}, timeout=90)


def execute(jupyter: str, code: str) -> None:
    """Run ``code`` in a new kernel through its websocket, then hang up (no browser stays)."""
    base, ticket = jupyter.split("/lab?ticket=")  # through the control plane's front door
    kernel = httpx.post(f"{base}/api/kernels", params={"ticket": ticket}, json={}).json()["id"]
    ws_url = base.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels?ticket={ticket}"
    message = execute_request(code)
    with connect(ws_url) as socket:
        socket.send(json.dumps(message))
        while True:  # until the kernel says it is busy with our request
            reply = json.loads(socket.recv(timeout=60))
            if reply.get("msg_type") == "status" and reply["content"]["execution_state"] == "busy":
                return


def test_a_busy_notebook_with_no_browser_keeps_its_workspace(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "workspace", "name": "lab", "spec": {"auto_shutoff": "6s"}})
    running = hub.wait("workspace/lab", {"running"}, timeout=120)
    execute(running["endpoints"]["jupyter"], "import time; time.sleep(16)")
    time.sleep(12)  # twice the auto_shutoff, the kernel busy and nobody watching
    assert hub.get("workspace/lab")["status"] == "running"
    stopped = hub.wait("workspace/lab", {"stopped"}, timeout=40)  # idle once the cell ends
    assert "no busy kernel" in stopped["status_reason"]
