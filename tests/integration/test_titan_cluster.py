"""``TitanCluster`` against a real server: what LocalCluster users expect."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys

import dask.array as da
import pytest
from distributed import Client

from service.client import NotFoundError, TitanCluster
from tests.integration.conftest import RunningServer
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def test_with_titan_cluster_and_client_computes_scales_and_cleans_up(
    server: RunningServer,
) -> None:
    with (
        TitanCluster(
            n_workers=2, worker_memory="1GiB", url=server.url, token=server.token
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        total = da.ones((2000, 2000), chunks=(500, 500)).sum().compute()
        assert total == 4_000_000
        assert "TitanCluster[cluster/" in repr(cluster) and "workers=2" in repr(cluster)
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        assert cluster.name in cluster._repr_html_()  # what the Jupyter widget shows
        assert cluster.get_client() is client
        name = cluster.name
        cluster.scale(3)
        client.wait_for_workers(3, timeout=60)
        assert len(cluster.scheduler_info["workers"]) >= 2
    with pytest.raises(NotFoundError):
        server.hub().get(f"cluster/{name}")


def test_workers_plan_and_requested_follow_the_control_plane(server: RunningServer) -> None:
    """What distributed's own code (Adaptive, widgets) reads of a Cluster."""
    assert [p for p in inspect.signature(TitanCluster).parameters if p.startswith("_")] == []
    with (
        TitanCluster("attrs", n_workers=1, url=server.url, token=server.token) as cluster,
        Client(cluster) as client,
    ):
        assert cluster.plan == cluster.requested == {"worker-0"}
        assert cluster.workers["worker-0"]["state"] in {"starting", "running"}
        cluster.scale(2)
        client.wait_for_workers(2, timeout=60)
        both = {"worker-0", "worker-1"}
        wait_for(lambda: cluster.requested == both, timeout=30)
        assert cluster.plan == both
        wait_for(lambda: cluster.observed == both, timeout=30)
        cluster.scale(1)
        wait_for(lambda: cluster.plan == {"worker-0"}, timeout=30)
        wait_for(lambda: cluster.requested == {"worker-0"}, timeout=60)


def test_the_async_form(server: RunningServer) -> None:
    async def scenario() -> None:
        async with (
            TitanCluster(
                "async-one", n_workers=1, url=server.url, token=server.token, asynchronous=True
            ) as cluster,
            Client(cluster, asynchronous=True) as client,
        ):
            await client.wait_for_workers(1)
            assert await client.submit(sum, [1, 2, 3]) == 6
            await cluster.scale(2)
            await client.wait_for_workers(2)

    asyncio.run(scenario())
    with pytest.raises(NotFoundError):
        server.hub().get("cluster/async-one")


def test_from_name_connects_without_owning(server: RunningServer) -> None:
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "shared", "spec": {"n_workers": 2}})
    running = hub.wait("cluster/shared", {"running"}, generation=1, timeout=120)
    assert running["workers"] == {"ready": 2, "wanted": 2}
    cluster = TitanCluster.from_name("shared", url=server.url, token=server.token)
    with Client(cluster) as client:
        # Running means its workers registered: no waiting for them here.
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.submit(lambda x: x + 1, 1).result() == 2
    cluster.close()
    assert hub.get("cluster/shared")["status"] == "running"  # still there for others


def test_attached_finds_the_cluster_of_a_job(server: RunningServer) -> None:
    script = (
        "from distributed import Client\n"
        "from service.client import TitanCluster\n"
        "cluster = TitanCluster.attached()\n"
        "with Client(cluster) as client:\n"
        "    client.wait_for_workers(1, timeout=60)\n"
        "    print('answer', client.submit(sum, [20, 22]).result(), cluster.name)\n"
        "cluster.close()\n"
    )
    hub = server.hub()
    hub.apply(
        {
            "type": "job",
            "name": "uses-cluster",
            "spec": {"command": [sys.executable, "-c", script], "dask_cluster": {"n_workers": 1}},
        }
    )
    done = hub.wait("job/uses-cluster", {"succeeded"}, generation=1, timeout=180)
    assert done["status"] == "succeeded"
    output = hub.logs("job/uses-cluster", "job")["processes"]["job"]["text"]
    assert "answer 42 uses-cluster" in output


def test_attached_outside_titan_explains_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TITAN_RESOURCE", raising=False)
    with pytest.raises(Exception, match="no attached cluster"):
        TitanCluster.attached()


def test_the_client_imports_no_server_modules() -> None:
    code = (
        "import sys, service.client, service.client.cluster;"
        "print(json.dumps(sorted(m for m in ('fastapi', 'sqlalchemy', 'docker', 'uvicorn',"
        " 'alembic', 'service.app', 'service.core') if m in sys.modules)))"
    )
    found = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, timeout=60
    )
    assert json.loads(found.stdout) == [], found.stderr


def test_the_jupyter_widget_scales_and_adapts_through_the_server(server: RunningServer) -> None:
    hub = server.hub()
    with TitanCluster("widget", n_workers=1, url=server.url, token=server.token) as cluster:
        widget = cluster._widget()  # what a notebook displays for `cluster`
        assert widget is not None
        status, scaling = widget.children
        assert cluster.name in status.value and "Workers" in status.value
        scale_status, accordion = scaling.children
        assert "Scaling mode: Manual" in scale_status.value
        request, scale = accordion.children[0].children
        request.value = 2
        scale.click()
        assert hub.recipe("cluster/widget")["spec"]["n_workers"] == 2
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
        minimum, maximum, adapt = accordion.children[1].children
        minimum.value, maximum.value = 1, 2
        adapt.click()
        assert hub.recipe("cluster/widget")["spec"]["adaptive"] == {"minimum": 1, "maximum": 2}
        assert "Adaptive, by the Titan server (1 to 2 workers)" in scale_status.value
