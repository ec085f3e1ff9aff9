"""kill -9 of a control plane whose processes are Slurm jobs: its jobs are adopted by name
and comment, a job cancelled meanwhile is replaced, nothing is submitted twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client

from tests.integration.test_restart_safety import running_server_process
from tests.slurm.conftest import CONTROL
from tests.slurm.test_slurm_backend import jobs_of, slurm
from tests.waiting import wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_kill_9_then_a_job_is_cancelled_then_restart(tmp_path: Path, slurm_prefix: str) -> None:
    env = {
        "TITAN_BACKEND": "slurm",
        "TITAN_SLURM_JOB_PREFIX": slurm_prefix,
        "TITAN_SLURM_QUEUE_SECONDS": "2",
    }
    with running_server_process(tmp_path / "data", env, host=CONTROL) as server:
        hub = server.start()
        spec = {"n_workers": 2, "worker": {"nthreads": 1, "memory": "1GiB"}}
        hub.apply({"type": "cluster", "name": "kept", "spec": spec})
        running = hub.wait("cluster/kept", {"running"}, timeout=180)
        before = {name: job[0] for name, job in jobs_of(slurm_prefix).items()}
        assert len(before) == 3, before

        server.kill()
        cancelled = f"{slurm_prefix}-{running['id'][:8]}-worker-1"
        slurm("scancel", before[cancelled])
        hub = server.start()

        def replaced() -> dict[str, str] | None:
            now = {name: job[0] for name, job in jobs_of(slurm_prefix).items()}
            return now if now.get(cancelled, before[cancelled]) != before[cancelled] else None

        after = wait_for(replaced, 120)
        assert isinstance(after, dict)
        hub.wait("cluster/kept", {"running"}, timeout=120)
        after = {name: job[0] for name, job in jobs_of(slurm_prefix).items()}
        kept = {name: job for name, job in before.items() if name != cancelled}
        assert {name: after[name] for name in kept} == kept  # adopted, not submitted again
        assert len(after) == 3, after  # nothing twice
        again = hub.get("cluster/kept")
        assert again["endpoints"]["scheduler"] == running["endpoints"]["scheduler"]
        security = hub.cluster_security("cluster/kept")
        with Client(again["endpoints"]["scheduler"], security=security, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            assert client.submit(lambda: 6 * 7).result(timeout=60) == 42
