"""The sampler: NVML readings (from a recorded fake), the psutil fallback, batching."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from tests.fake_nvml import FakeNvml
from workers.telemetry import BATCH_SIZE, GpuReader, HostReader, Pusher, Sample, Sampler

FIRST = "GPU-5d0f6a52-8c4c-4b8e-9d2a-000000000001"
SECOND = "GPU-5d0f6a52-8c4c-4b8e-9d2a-000000000002"


def test_every_field_a_gpu_reports_is_read_in_plain_units() -> None:
    reader = GpuReader.open(visible="0", nvml=FakeNvml())
    assert reader is not None
    [sample] = reader.read(100.0)
    assert sample.source == f"gpu:{FIRST}" and sample.time == 100.0
    assert sample.values == {
        "gpu_utilization_percent": 87.0,
        "gpu_memory_utilization_percent": 41.0,
        "gpu_memory_used_bytes": 61203283968.0,
        "gpu_memory_total_bytes": 85520809984.0,
        "gpu_memory_used_percent": pytest.approx(71.565, abs=0.01),
        "gpu_temperature_celsius": 64.0,
        "gpu_power_watts": 512.034,
        "gpu_power_limit_watts": 700.0,
        "gpu_sm_clock_mhz": 1980.0,
        "gpu_pcie_rx_bytes_per_second": 1250 * 1024.0,
        "gpu_pcie_tx_bytes_per_second": 310 * 1024.0,
        "gpu_ecc_corrected_errors_total": 0.0,
        "gpu_ecc_uncorrected_errors_total": 0.0,
        "gpu_throttle_reasons": 1.0,
        "gpu_processes": 2.0,
    }
    assert sample.info == {"gpu": FIRST, "model": "NVIDIA H100 80GB HBM3", "pids": "4242,4243"}


def test_fields_a_gpu_does_not_support_are_left_out_not_failed() -> None:
    reader = GpuReader.open(visible=SECOND, nvml=FakeNvml())  # chosen by UUID
    assert reader is not None
    [sample] = reader.read(1.0)
    assert sample.source == f"gpu:{SECOND}"
    assert "gpu_ecc_corrected_errors_total" not in sample.values
    assert "gpu_pcie_rx_bytes_per_second" not in sample.values
    assert "gpu_processes" not in sample.values and "pids" not in sample.info
    assert sample.values["gpu_temperature_celsius"] == 38.0


def test_the_gpus_a_process_reads_follow_cuda_visible_devices() -> None:
    nvml = FakeNvml()
    every = GpuReader.open(visible=None, nvml=nvml)  # unset: the whole host
    assert every is not None and every.uuids == [FIRST, SECOND]
    both = GpuReader.open(visible=f"1,{FIRST}", nvml=nvml)
    assert both is not None and both.uuids == [SECOND, FIRST]
    assert GpuReader.open(visible="", nvml=nvml) is None  # given no GPU: sample the host


def test_no_nvml_means_no_gpu_reader() -> None:
    assert GpuReader.open(visible=None, nvml=FakeNvml(fail_init=True)) is None


def test_the_host_is_sampled_with_psutil_where_there_is_no_gpu() -> None:
    reader = HostReader("host:worker-0")
    first = reader.read(time.time())[0]
    time.sleep(0.2)
    second = reader.read(time.time())[0]
    assert first.source == second.source == "host:worker-0"
    for name in ("host_cpu_percent", "host_memory_used_bytes", "host_memory_total_bytes"):
        assert name in second.values
    assert 0 < second.values["host_memory_used_bytes"] <= second.values["host_memory_total_bytes"]
    assert second.values["process_memory_bytes"] > 0  # this test's own process tree
    assert second.values["host_network_rx_bytes_per_second"] >= 0  # rates need two readings
    assert "host_network_rx_bytes_per_second" not in first.values


def _sample(n: int) -> Sample:
    return Sample(float(n), "host:x", {"v": float(n)})


def test_a_full_buffer_drops_the_oldest_and_counts_them() -> None:
    sent: list[dict[str, Any]] = []
    pusher = Pusher(sent.append, "admin/cluster/c", "worker-0", capacity=3, batch_size=2)
    pusher.add(_sample(n) for n in range(5))
    assert pusher.dropped == 2
    assert pusher.flush()
    times = [t for body in sent for chunk in body["chunks"] for t in chunk["times"]]
    assert times == [2.0, 3.0, 4.0]  # batches of 2, oldest gone
    assert sent[-1]["dropped"] == 2 and sent[-1]["resource"] == "admin/cluster/c"
    assert not pusher.buffer


def test_samples_wait_while_the_control_plane_is_away() -> None:
    up = False

    def post(body: dict[str, Any]) -> None:
        if not up:
            raise ConnectionError("refused")

    pusher = Pusher(post, "r", "p")
    pusher.add([_sample(1), _sample(2)])
    assert not pusher.flush() and len(pusher.buffer) == 2
    up = True
    assert pusher.flush() and not pusher.buffer


def test_pushes_back_off_while_failing_and_reading_goes_on() -> None:
    attempts: list[float] = []
    lock = threading.Lock()

    def post(body: dict[str, Any]) -> None:
        with lock:
            attempts.append(time.monotonic())
        raise ConnectionError("refused")

    class Counting:
        reads = 0

        def read(self, now: float) -> list[Sample]:
            Counting.reads += 1
            return [_sample(Counting.reads)]

    sampler = Sampler([Counting()], Pusher(post, "r", "p"), interval=0.01, push_seconds=0.05)
    sampler.start()
    time.sleep(1.0)
    sampler.stop()
    sampler.join(timeout=5)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert Counting.reads > 40  # reading never waited for the pushes
    assert len(attempts) < 10 and gaps and gaps[-1] > gaps[0]  # pushes spread out
    assert sampler.backoff > 0.05


def test_a_failing_reader_skips_a_turn_not_the_sampler() -> None:
    class Broken:
        def read(self, now: float) -> list[Sample]:
            raise RuntimeError("driver hiccup")

    class Fine:
        def read(self, now: float) -> list[Sample]:
            return [_sample(1)]

    sampler = Sampler([Broken(), Fine()], Pusher(lambda body: None, "r", "p"))
    assert [s.source for s in sampler.sample_once()] == ["host:x"]


def test_a_recording_replays_to_the_same_readings(tmp_path: Path) -> None:
    live = GpuReader.open(visible=None, nvml=FakeNvml())
    assert live is not None
    recorded = tmp_path / "nvml.json"
    recorded.write_text(json.dumps({"gpus": live.recording()}))
    replayed = GpuReader.open(visible=None, nvml=FakeNvml(recorded))
    assert replayed is not None
    assert [s.values for s in replayed.read(1.0)] == [s.values for s in live.read(1.0)]
    assert [s.info for s in replayed.read(1.0)] == [s.info for s in live.read(1.0)]


def test_a_full_batch_of_gpu_samples_fits_the_api_body_limit() -> None:
    reader = GpuReader.open(visible="0", nvml=FakeNvml())
    assert reader is not None
    [template] = reader.read(1.0)
    rng = random.Random(0)
    samples = [  # every field of a GPU at full float precision: the longest JSON there is
        Sample(
            1_800_000_000 + rng.random() * 1000,
            template.source,
            {name: rng.random() * 1e11 for name in template.values},
            {**template.info, "pids": ",".join(str(4_000_000 + i) for i in range(20))},
        )
        for _ in range(BATCH_SIZE)
    ]
    sent: list[dict[str, Any]] = []
    pusher = Pusher(sent.append, "someone/workspace/" + "x" * 63, "worker-999")
    pusher.add(samples)
    pusher.flush()
    assert len(sent) == 1
    assert len(json.dumps(sent[0]).encode()) < Settings().max_body_bytes
