"""What the front door costs a deployment's callers, against calling the app directly.

A deployment is reached only through the control plane (``/deploy/<owner>/<name>/``):
each request is authenticated, matched to a route, and relayed to a healthy replica.
This measures requests/s and p50/p99 latency of ``GET .../predict`` through the front
door to a deployment of 1 and of 2 replicas, at 1 and 8 concurrent clients, against the
same app (the deployment tests' stdlib replica, tests/integration/deploy_app.py) called
directly on its own port in the same run, on the same machine.

Usage: python benchmarks/deployments.py [--seconds 5] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from api import free_port, load, titan_server
from rich.console import Console
from rich.table import Table

APP = Path(__file__).parent.parent / "tests" / "integration" / "deploy_app.py"


def main() -> None:
    """Start a server and a bare app, deploy the app, measure each case, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="titan-deploy-bench-"))
    titan, url, env = titan_server(work)
    app_port = free_port()
    bare = subprocess.Popen([sys.executable, str(APP), "v1"], env={**env, "PORT": str(app_port)})
    try:
        admin = (work / "data" / "admin-token").read_text().strip()
        bearer = {"Authorization": f"Bearer {admin}"}
        table = Table("case", "clients", "req/s", "p50 ms", "p99 ms", "vs the app alone")
        for scale in (1, 2):
            deploy(url, bearer, scale)
            for clients in args.concurrency:
                cases = [
                    ("the app alone, on its own port", f"http://127.0.0.1:{app_port}/predict", {}),
                    (
                        f"through the front door, {scale} replica(s)",
                        f"{url}/deploy/admin/web/predict",
                        bearer,
                    ),
                ]
                baseline = 0.0
                for name, address, headers in cases:
                    rate, p50, p99 = asyncio.run(
                        load("GET", address, clients, args.seconds, headers=headers)
                    )
                    baseline = baseline or rate
                    table.add_row(
                        name,
                        str(clients),
                        f"{rate:.0f}",
                        f"{p50:.1f}",
                        f"{p99:.1f}",
                        f"{rate / baseline:.2f}",
                    )
        Console(width=140).print(table)
        undeploy(url, bearer)
    finally:
        bare.terminate()
        titan.terminate()
        bare.wait(timeout=30)
        titan.wait(timeout=30)


def deploy(url: str, bearer: dict[str, str], scale: int) -> None:
    """Apply deployment 'web' with ``scale`` replicas of the app; return once that many
    different replicas answer through the front door."""
    recipe = {
        "type": "deployment",
        "name": "web",
        "spec": {
            "command": f'exec "$TITAN_PYTHON" {APP} v1',
            "scale": scale,
            "health_check": {"path": "/healthz", "interval": 0.5},
        },
    }
    applied = httpx.put(f"{url}/api/v1/recipes", json=recipe, headers=bearer, timeout=30)
    assert applied.status_code in (200, 201), applied.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen = set()
        for _ in range(4 * scale):
            answer = httpx.get(f"{url}/deploy/admin/web/", headers=bearer, timeout=30)
            if answer.status_code == 200:
                seen.add(answer.json()["replica"])
        if len(seen) == scale:
            return
        time.sleep(0.5)
    raise SystemExit(f"deployment 'web' did not serve from {scale} replica(s) within 120 s")


def undeploy(url: str, bearer: dict[str, str]) -> None:
    """Delete deployment 'web' and wait until it is gone (its replicas stopped): a server
    stopped with it running would leave them for its next start to adopt."""
    where = f"{url}/api/v1/resources/deployment/web"
    httpx.delete(where, headers=bearer, timeout=30).raise_for_status()
    deadline = time.monotonic() + 60
    while httpx.get(where, headers=bearer, timeout=30).status_code != 404:
        if time.monotonic() > deadline:
            raise SystemExit("deployment 'web' was not deleted within 60 s")
        time.sleep(0.25)


if __name__ == "__main__":
    main()
