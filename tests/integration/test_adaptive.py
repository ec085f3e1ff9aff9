"""Server-side adaptive scaling with a real server, real Dask scheduler and workers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from distributed import Client, get_worker

from service.client import Hub, TitanCluster
from tests.integration.conftest import ServerFactory

pytestmark = pytest.mark.slow


def workers_of(hub: Hub, ref: str) -> list[str]:
    """The worker processes the control plane runs for ``ref`` now."""
    processes = hub.get(ref)["processes"]
    return sorted(p["name"] for p in processes if p["name"].startswith("worker-"))


def until(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.2)


def test_adaptive_scales_up_under_load_and_retires_only_idle_workers(
    start_server: ServerFactory,
) -> None:
    def slow_name(seconds: float) -> str:  # local: pickled by value for the workers
        time.sleep(seconds)
        return str(get_worker().name)

    server = start_server(adaptive_interval_seconds=0.3, adaptive_wait_count=3)
    hub = server.hub()
    bounds = {"minimum": 1, "maximum": 3}
    with (
        TitanCluster("elastic", adaptive=bounds, url=server.url, token=server.token) as cluster,
        Client(cluster) as client,
    ):
        ref = "cluster/elastic"
        assert workers_of(hub, ref) == ["worker-0"]
        # Load: 40 half-second tasks queue on one thread; the scheduler asks for more.
        futures = client.map(time.sleep, [0.5] * 40, pure=False)
        until(lambda: len(workers_of(hub, ref)) == 3, what="scale-up to the maximum")
        client.wait_for_workers(3, timeout=60)
        # While loaded: one worker gets a long task, one a result only it holds.
        busy = client.submit(slow_name, 10, workers=["worker-2"], pure=False)
        held = client.submit(lambda: b"x" * 1_000_000, workers=["worker-1"], pure=False)
        client.gather(futures)
        held.result()
        until(lambda: workers_of(hub, ref) == ["worker-2"], what="scale-down to the busy worker")
        assert busy.result() == "worker-2"  # ran to the end where it started
        assert held.result() == b"x" * 1_000_000  # moved off worker-1 before it stopped
        reasons = [e["reason"] for e in hub.history(ref)]
        # Up from 1 to 3, in one step or (a loaded machine's scheduler asking for more as
        # the queue grows) in two; each step says why.
        up = [r for r in reasons if r.startswith("adaptive: scaling up from ")]
        down = [r for r in reasons if r.startswith("adaptive: scaling down")]
        assert up and up[0].startswith("adaptive: scaling up from 1 to ")
        assert any(" to 3 workers" in r for r in up), up
        assert all("the cluster asks for" in r and "bounds 1..3" in r for r in up), up
        assert down and all("worker-2" not in r for r in down)
        assert {"worker-0", "worker-1"} <= {
            w for r in down for w in ("worker-0", "worker-1") if w in r
        }
        # Without load it stays at the minimum.
        time.sleep(2)
        assert workers_of(hub, ref) == ["worker-2"]


def test_adapt_and_scale_from_the_client_change_the_recipe(start_server: ServerFactory) -> None:
    server = start_server(adaptive_interval_seconds=0.3)
    hub = server.hub()
    with TitanCluster("bounded", n_workers=1, url=server.url, token=server.token) as cluster:
        cluster.adapt(minimum=2, maximum=3)
        assert hub.recipe("cluster/bounded")["spec"]["adaptive"] == {"minimum": 2, "maximum": 3}
        until(lambda: len(workers_of(hub, "cluster/bounded")) == 2, what="the minimum")
        cluster.scale(1)  # an explicit size ends adaptive scaling
        assert "adaptive" not in hub.recipe("cluster/bounded")["spec"]
        until(lambda: len(workers_of(hub, "cluster/bounded")) == 1, what="scale(1)")
        with pytest.raises(Exception, match="maximum"):
            cluster.adapt(minimum=1)


def test_scaling_up_starts_the_workers_that_fit_now(start_server: ServerFactory) -> None:
    server = start_server(adaptive_interval_seconds=0.3)
    hub = server.hub()
    (node,) = hub.nodes()
    # Each worker asks for 40% of the node's memory: two fit beside each other, not three.
    memory = f"{int(node['memory_bytes'] * 0.4) // 1024**2}MiB"
    recipe = {
        "type": "cluster",
        "name": "roomy",
        "spec": {"n_workers": 1, "worker": {"memory": memory}, "adaptive": {"maximum": 3}},
    }
    hub.apply(recipe)
    hub.wait("cluster/roomy", {"running"}, timeout=120)
    cluster = TitanCluster.from_name("roomy", url=server.url, token=server.token)
    with Client(cluster) as client:
        futures = client.map(time.sleep, [0.5] * 40, pure=False)
        # The scheduler asks for 3; the two that fit start now, the third waits.
        until(lambda: len(workers_of(hub, "cluster/roomy")) == 2, what="the workers that fit")
        client.wait_for_workers(2, timeout=60)
        until(lambda: hub.get("cluster/roomy")["workers"] == {"ready": 2, "wanted": 3})
        view = hub.get("cluster/roomy")
        assert view["status"] == "degraded"
        assert "worker-2 waiting for" in view["status_reason"], view["status_reason"]
        assert "memory" in view["status_reason"]
        client.gather(futures)
        assert len({w["name"] for w in client.scheduler_info()["workers"].values()}) == 2
    cluster.close()
