"""A real Prometheus server (the Debian package) scrapes Titan's /metrics with a token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.backends.ports import free_port_outside_ephemeral_range
from tests.integration.conftest import RunningServer
from tests.integration.test_telemetry import wait_for

pytestmark = pytest.mark.slow
PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(
    PROMETHEUS is None and os.environ.get("TITAN_TEST_PROMETHEUS") != "1",
    reason="no prometheus binary (apt-get install prometheus; .ci/run does)",
)
def test_prometheus_scrapes_gpu_and_host_metrics_by_resource(
    server: RunningServer, tmp_path: Path
) -> None:
    assert PROMETHEUS is not None, "TITAN_TEST_PROMETHEUS=1 but prometheus is not installed"
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "scraped", "spec": {"n_workers": 1}})
    hub.wait("cluster/scraped", {"running"}, timeout=90)

    token = tmp_path / "token"
    token.write_text(server.token)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "titan",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(token)},
                "static_configs": [{"targets": [server.url.removeprefix("http://")]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # YAML reads JSON
    port = free_port_outside_ephemeral_range()
    log = (tmp_path / "prometheus.log").open("w")
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:

        def query(expression: str) -> list[dict[str, Any]] | None:
            try:
                answer = httpx.get(f"{api}/query", params={"query": expression}, timeout=5)
            except httpx.TransportError:
                return None  # not listening yet
            if answer.status_code != 200:  # still starting: "Service Unavailable", not JSON
                return None
            result: list[dict[str, Any]] = answer.json()["data"]["result"]
            return result

        cpu = wait_for(
            lambda: query('titan_host_cpu_percent{resource="admin/cluster/scraped"}'), timeout=60
        )
        assert {s["metric"]["process"] for s in cpu} == {"scheduler", "worker-0"}
        up = wait_for(lambda: query('up{job="titan"}'), timeout=30)
        assert up[0]["value"][1] == "1"
        running = wait_for(lambda: query('titan_resources{status="running"}'), timeout=30)
        assert running[0]["value"][1] == "1"
        assert wait_for(lambda: query("titan_api_request_seconds_count"), timeout=30)
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()
        log.close()
