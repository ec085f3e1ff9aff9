"""A real Slurm cluster for the slurm-marked tests: slurmctld here, a slurmd on each of two
hosts in network namespaces (``bash .ci/slurm`` sets it up), and cleanup by job name prefix.

Set ``TITAN_TEST_SLURM=1`` (``.ci/run`` does) to make a missing cluster a failure;
otherwise these tests skip where there is none. Every job a test makes carries a
per-test name prefix and is cancelled after it; a failed test shows Slurm's view of
its jobs first.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.conftest import (  # noqa: F401 - a real server
    RunningServer,
    ServerFactory,
    start_server,
)

REQUIRED = os.environ.get("TITAN_TEST_SLURM") == "1"
CONTROL = "10.77.0.1"  # where the nodes reach this machine (the root namespace)
NODES = {"n1": "10.77.0.11", "n2": "10.77.0.12"}

pytestmark = pytest.mark.slurm


def slurm(*argv: str) -> str:
    """A Slurm tool's output (it must succeed)."""
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


@pytest.fixture(scope="session")
def slurm_cluster() -> dict[str, str]:
    """The test cluster's nodes (name → address), both answering and idle or mixed."""
    try:
        states = dict(
            line.split() for line in slurm("sinfo", "-N", "-h", "-o", "%N %t").split("\n") if line
        )
    except (OSError, subprocess.SubprocessError) as exc:
        if REQUIRED:
            pytest.fail(f"TITAN_TEST_SLURM=1 but Slurm does not answer: {exc}")
        pytest.skip(f"no Slurm cluster here ({exc}); bash .ci/slurm makes one")
    if set(states) != set(NODES):
        pytest.fail(f"the test cluster should have nodes {sorted(NODES)}; sinfo says {states}")
    return NODES


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed slurm test's report shows Slurm's view of its jobs (before they go)."""
    outcome = yield
    report = outcome.get_result()
    prefix = getattr(item, "funcargs", {}).get("slurm_prefix")
    if report.when != "call" or not report.failed or not prefix:
        return
    jobs = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i %j %T %r %N"], capture_output=True, text=True
    ).stdout
    mine = "\n".join(line for line in jobs.splitlines() if f" {prefix}-" in line)
    report.sections.append(("Slurm jobs of this test", mine or "(none)"))


@pytest.fixture
def slurm_prefix(slurm_cluster: dict[str, str]) -> Iterator[str]:
    """A unique job name prefix; every job carrying it is cancelled after the test.

    Request it before ``start_server`` so that servers stop first.
    """
    prefix = f"titantest{uuid.uuid4().hex[:6]}"
    yield prefix
    jobs = slurm("squeue", "-h", "-o", "%i %j").splitlines()
    mine = [line.split()[0] for line in jobs if line.split()[1].startswith(prefix)]
    if mine:
        subprocess.run(["scancel", *mine], check=False)


@pytest.fixture
def slurm_server(slurm_prefix: str, start_server: ServerFactory) -> RunningServer:  # noqa: F811
    """A slurm-backend server, listening where the nodes reach it too; jobs run as the
    tests' OS account."""
    return start_server(
        backend="slurm",
        host=CONTROL,
        slurm_job_prefix=slurm_prefix,
        slurm_queue_seconds=2.0,
        start_timeout_seconds=120.0,
    )
