"""Telemetry at scale: ingest rate, a 24 h query, and the sampler's own cost.

Against an embedded ``titan server`` (SQLite, local backend, its own process):

- ingest: 4 threads POST batches of GPU samples (15 metrics each) to
  ``/api/v1/telemetry``: 2,000 a batch as columns (what the sampler sends),
  500 as one object each; samples/s over --ingest samples. Baseline in the
  same run: the same rows written straight into SQLite (``executemany``, no
  HTTP, no validation), the floor the store sits on. Target >= 50,000/s.
- query: 24 h of 1 Hz samples for 8 GPUs (691,200) are written, rolled up,
  and ``GET .../telemetry`` asks for the whole day (<= 1,000 points per GPU);
  median of 20. Baseline: the same day answered from raw samples (what a
  store without rollups would do). Target < 100 ms.
- sampler: CPU time of one reading (psutil host path here; 8 GPUs through
  the recorded NVML fake, which measures the sampler's own Python, not the
  driver) and of one push, as % of one core at 1 Hz. Target <= 1 %.

Usage: python benchmarks/telemetry.py [--ingest 200000] [--hours 24]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.client import Hub
from service.demo import embedded_server
from tests.fake_nvml import FakeNvml
from workers.telemetry import (
    BATCH_SIZE,
    GpuReader,
    HostReader,
    Pusher,
    Sample,
    columns,
    http_post,
)

console = Console()
# Samples per POST: as the sampler sends them (columns), and 500 one-object samples
# (2,000 of those would pass the 1 MiB body limit).
BATCH = {"chunks": BATCH_SIZE, "samples": 500}
GPUS = 8


def gpu_sample(at: float, gpu: int) -> dict[str, Any]:
    """A realistic GPU sample: the recorded H100 reading with a moving utilisation."""
    values = {
        "gpu_utilization_percent": float((at + gpu * 7) % 100),
        "gpu_memory_utilization_percent": 41.0,
        "gpu_memory_used_bytes": 61203283968.0,
        "gpu_memory_total_bytes": 85520809984.0,
        "gpu_memory_used_percent": 71.56,
        "gpu_temperature_celsius": 64.0,
        "gpu_power_watts": 512.0,
        "gpu_power_limit_watts": 700.0,
        "gpu_sm_clock_mhz": 1980.0,
        "gpu_pcie_rx_bytes_per_second": 1280000.0,
        "gpu_pcie_tx_bytes_per_second": 317440.0,
        "gpu_ecc_corrected_errors_total": 0.0,
        "gpu_ecc_uncorrected_errors_total": 0.0,
        "gpu_throttle_reasons": 1.0,
        "gpu_processes": 2.0,
    }
    source = f"gpu:GPU-00000000-0000-0000-0000-00000000000{gpu}"
    return {"time": at, "source": source, "values": values, "info": {"gpu": source[4:]}}


def batch_body(resource: str, samples: list[dict[str, Any]], form: str) -> bytes:
    """A POST body: ``chunks`` (columns per source, as the sampler sends) or ``samples``."""
    if form == "samples":
        return json.dumps({"resource": resource, "samples": samples}).encode()
    as_samples = [Sample(s["time"], s["source"], s["values"], s["info"]) for s in samples]
    return json.dumps({"resource": resource, "chunks": columns(as_samples)}).encode()


def ingest_api(url: str, token: str, resource: str, total: int, form: str) -> float:
    """Samples per second through POST /api/v1/telemetry, 4 senders."""
    size = BATCH[form]
    first = time.time() - total / GPUS - 60  # 1 Hz per GPU, ending a minute ago
    bodies = [
        batch_body(
            resource,
            [gpu_sample(first + (b * size + i) // GPUS, i % GPUS) for i in range(size)],
            form,
        )
        for b in range(total // size)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(chunk: list[bytes]) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for body in chunk:
                answer = client.post("/api/v1/telemetry", content=body)
                assert answer.status_code == 202, answer.text

    chunks = [bodies[i::4] for i in range(4)]
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, chunks))
    return len(bodies) * size / (time.perf_counter() - started)


def ingest_sqlite(folder: Path, total: int) -> float:
    """Samples per second written straight into SQLite: the floor under the store."""
    db = sqlite3.connect(folder / "floor.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE samples (id INTEGER PRIMARY KEY, resource_id TEXT, source TEXT, "
        'at REAL, "values" TEXT)'
    )
    db.execute("CREATE INDEX ix ON samples (resource_id, at)")
    db.execute("CREATE INDEX ix2 ON samples (at)")
    now = time.time()
    rows = [gpu_sample(now + i / GPUS, i % GPUS) for i in range(total)]
    started = time.perf_counter()
    for b in range(0, total, 500):
        with db:
            db.executemany(
                'INSERT INTO samples (resource_id, source, at, "values") VALUES (?, ?, ?, ?)',
                [("r", r["source"], r["time"], json.dumps(r["values"])) for r in rows[b : b + 500]],
            )
    rate = total / (time.perf_counter() - started)
    db.close()
    return rate


def fill_day(url: str, token: str, resource: str, hours: float) -> tuple[int, float]:
    """POST ``hours`` of 1 Hz samples for 8 GPUs, ending now; (samples, their end time)."""
    end = time.time()
    start = end - hours * 3600
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    seconds_per_batch = BATCH_SIZE // GPUS
    written = 0
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        second = start
        while second < end:
            samples = [
                gpu_sample(second + s, g)
                for s in range(seconds_per_batch)
                if second + s < end
                for g in range(GPUS)
            ]
            body = batch_body(resource, samples, "chunks")
            client.post("/api/v1/telemetry", content=body).raise_for_status()
            written += len(samples)
            second += seconds_per_batch
    return written, end


def query_times(
    hub: Hub, ref: str, hours: float, step: float | None, runs: int, limit: bool = True
) -> tuple[list[float], str]:
    """Seconds per query of the whole window, ``runs`` times, and what answered it (the
    server's ``resolution``: raw samples or 1m rollups)."""
    end = time.time()
    times = []
    resolution = ""
    for _ in range(runs):
        began = time.perf_counter()
        answer = hub.telemetry(ref, "gpu_utilization_percent", end - hours * 3600, end, step)
        times.append(time.perf_counter() - began)
        points = max(len(s["points"]) for s in answer["series"])
        assert len(answer["series"]) == GPUS, answer["series"]
        assert points <= 1000 or not limit, points
        resolution = answer["resolution"]
    return times, resolution


def cpu_per_call(action: Any, calls: int) -> float:
    """CPU seconds (this process, all threads) per call of ``action``."""
    action()  # warm up (first psutil reading only sets a reference point)
    began = time.process_time()
    for _ in range(calls):
        action()
    return (time.process_time() - began) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", type=int, default=200_000, help="samples to send")
    parser.add_argument("--hours", type=float, default=24)
    args = parser.parse_args()
    # This server keeps two days raw (so the raw baseline can answer a whole day) and
    # compacts every 20 s (the default is 60; the day is rolled up sooner after it is written).
    os.environ["TITAN_TELEMETRY_RAW_RETENTION_SECONDS"] = str(2 * 86400)
    os.environ["TITAN_TELEMETRY_COMPACT_SECONDS"] = "20"
    table = Table("measure", "Titan", "baseline", "ratio", "target")
    with embedded_server(console) as (url, token), tempfile.TemporaryDirectory() as folder:
        hub = Hub(url, token)
        for name in ("ingest", "day"):
            hub.apply({"type": "job", "name": name, "spec": {"command": "sleep 3600"}})
            hub.wait(f"job/{name}", {"running"}, timeout=60)
        floor = ingest_sqlite(Path(folder), args.ingest)
        for form in ("chunks", "samples"):
            rate = ingest_api(url, token, "admin/job/ingest", args.ingest, form)
            table.add_row(
                f"ingest: samples/s as {form} ({args.ingest:,} GPU samples, 4 senders, "
                f"batches of {BATCH[form]})",
                f"{rate:,.0f}",
                f"{floor:,.0f} (bare SQLite rows)",
                f"{rate / floor:.2f}x",
                ">= 50,000/s",
            )

        began = time.perf_counter()
        written, end = fill_day(url, token, "admin/job/day", args.hours)
        fill_rate = written / (time.perf_counter() - began)
        console.print(
            f"wrote {written:,} samples ({args.hours:g} h x {GPUS} GPUs) at {fill_rate:,.0f}/s"
        )
        deadline = time.monotonic() + 300
        minutes = int(args.hours * 60)
        while True:  # until the server has rolled up the day (all but the last minutes)
            day = hub.telemetry(
                "job/day", "gpu_utilization_percent", end - args.hours * 3600, end, step=60
            )
            if sum(len(s["points"]) for s in day["series"]) >= GPUS * (minutes - 4):
                break
            assert time.monotonic() < deadline, "the server did not roll the day up in 5 minutes"
            time.sleep(1)
        rolled, answered_from = query_times(hub, "job/day", args.hours, None, 20)
        raw, _ = query_times(hub, "job/day", args.hours, 30, 3, limit=False)
        table.add_row(
            f"query: {args.hours:g} h x {GPUS} GPUs, whole range, median ms",
            f"{statistics.median(rolled) * 1000:.1f} (default step: {answered_from})",
            f"{statistics.median(raw) * 1000:.1f} (raw samples)",
            f"{statistics.median(rolled) / statistics.median(raw):.3f}x",
            "< 100 ms",
        )

        host = HostReader("host:bench")
        host_cpu = cpu_per_call(lambda: host.read(time.time()), 200)
        fake = FakeNvml()
        fake.gpus = [dict(fake.gpus[0], uuid=f"GPU-{i}") for i in range(GPUS)]
        gpus = GpuReader.open(visible=None, nvml=fake)
        assert gpus is not None
        gpu_cpu = cpu_per_call(lambda: gpus.read(time.time()), 200)
        pusher = Pusher(http_post(url, token), "admin/job/ingest", "bench")
        five = host.read(time.time()) * 5

        def push() -> None:
            pusher.add(five)
            pusher.flush()

        push_cpu = cpu_per_call(push, 50) / 5  # one push every 5 s
        for label, cost in (
            ("sampler: host via psutil, % of a core at 1 Hz", host_cpu + push_cpu),
            (
                f"sampler: {GPUS} GPUs via NVML fake (Python only), % of a core at 1 Hz",
                gpu_cpu + push_cpu,
            ),
        ):
            table.add_row(label, f"{cost * 100:.3f} %", "", "", "<= 1 %")
        for name in ("ingest", "day"):  # the server's processes outlive it otherwise
            hub.delete(f"job/{name}")
        for name in ("ingest", "day"):
            hub.wait_gone(f"job/{name}", timeout=60)
    console.print(table)
    console.print(
        f"reading {host_cpu * 1e3:.2f} ms (host) / {gpu_cpu * 1e3:.2f} ms ({GPUS} GPUs, fake); "
        f"one push of 5 samples {push_cpu * 5e3:.2f} ms of CPU"
    )


if __name__ == "__main__":
    main()
