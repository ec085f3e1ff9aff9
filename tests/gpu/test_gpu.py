"""The real GPU paths, where there is a GPU."""

from __future__ import annotations

import os

import pytest
from distributed import Client

from tests.integration.conftest import ServerFactory
from workers.telemetry import GpuReader

pytestmark = pytest.mark.gpu


def test_the_sampler_reads_every_gpu_through_nvml() -> None:
    reader = GpuReader.open(visible=None)
    assert reader is not None
    for sample in reader.read(0.0):
        assert sample.source.startswith("gpu:GPU-")
        values = sample.values
        assert 0 <= values["gpu_utilization_percent"] <= 100
        assert 0 < values["gpu_memory_used_bytes"] <= values["gpu_memory_total_bytes"]
        assert 0 < values["gpu_temperature_celsius"] < 120
        assert values["gpu_power_watts"] > 0 and values["gpu_sm_clock_mhz"] > 0


def test_a_gpu_worker_is_a_cuda_worker_that_trains_with_cuda(
    start_server: ServerFactory,
) -> None:
    xgboost = pytest.importorskip("xgboost")
    pytest.importorskip("dask_cuda")
    pytest.importorskip("cupy")
    server = start_server()
    hub = server.hub()
    hub.apply({"type": "cluster", "name": "g", "spec": {"n_workers": 1, "worker": {"gpu": 1}}})
    running = hub.wait("cluster/g", {"running"}, timeout=300)
    [worker] = [p for p in running["processes"] if p["name"] == "worker-0"]
    with Client(
        running["endpoints"]["scheduler"], security=hub.cluster_security("cluster/g"), timeout="60s"
    ) as client:
        client.wait_for_workers(1, timeout=120)
        [visible] = client.run(lambda: os.environ["CUDA_VISIBLE_DEVICES"]).values()
        assert [visible] == worker["gpus"]
        from workers.training.cupy_task import gram_checksum

        assert gram_checksum(client, 2048, 1024)["device"] == "cuda"
        if xgboost.build_info().get("USE_CUDA"):
            from workers.training.xgboost_train import train_regression

            result, _ = train_regression(client, 200_000, 20, 20)
            assert result.device == "cuda" and result.rmse < result.baseline_rmse / 2
    current = {r["name"]: r for r in hub.current()}
    assert any(s["source"] == f"gpu:{visible}" for s in current["g"]["sources"])
