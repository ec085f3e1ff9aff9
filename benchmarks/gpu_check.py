"""Every GPU path of Titan on a machine with an NVIDIA GPU, in one go, as a short table.

1. NVML: what the sampler reads from each GPU (and a recording of it for the
   tests' NVML fake, ``nvml_recording.json``), and what one reading costs;
2. a local-backend Titan cluster whose worker gets a GPU by UUID and runs
   ``dask cuda worker``, its GPU telemetry reaching the API;
3. XGBoost ``device="cuda"`` through that cluster on 1M and 10M synthetic rows
   against the CPU ``hist`` path on a LocalCluster of the machine's cores;
4. a CuPy task (``gram_checksum``) on the GPU worker against NumPy on CPU;
5. Ray's GPU path: a Ray cluster whose worker node gets a GPU by UUID
   (``--num-gpus 1``, ``CUDA_VISIBLE_DEVICES``), a ``num_gpus=1`` task seeing it,
   and ``python -m workers.training --engine ray --device cuda`` (XGBoost on Ray
   Train) against ``--device cpu`` on the same cluster.

Each step runs even if an earlier one failed, and says why it was skipped.
Usage: python benchmarks/gpu_check.py --out DIR (benchmarks/gpu_check.sh wraps it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(width=120)
Row = tuple[str, str, str]


def step(rows: list[Row], name: str, run: Callable[[], list[Row]], log: Path) -> None:
    """Run one check; its rows, or one row saying how it failed (traceback in ``log``)."""
    try:
        rows.extend(run())
    except Exception as exc:
        with log.open("a") as stream:
            stream.write(f"== {name}\n{traceback.format_exc()}\n")
        rows.append((name, "FAILED", f"{type(exc).__name__}: {str(exc)[:150]}"))


def nvml(out: Path) -> list[Row]:
    from workers.telemetry import GpuReader

    reader = GpuReader.open(visible=None)
    if reader is None:
        return [("NVML", "FAILED", "no GPU readable through NVML")]
    (out / "nvml_recording.json").write_text(json.dumps({"gpus": reader.recording()}, indent=1))
    samples = reader.read(time.time())
    rows = []
    for sample in samples:
        v = sample.values
        rows.append(
            (
                f"NVML {sample.info.get('model')} {sample.source[4:16]}…",
                "ok",
                f"util {v.get('gpu_utilization_percent')} %, mem "
                f"{v.get('gpu_memory_used_bytes', 0) / 2**30:.1f}/"
                f"{v.get('gpu_memory_total_bytes', 0) / 2**30:.0f} GiB, "
                f"{v.get('gpu_temperature_celsius')} °C, {v.get('gpu_power_watts')} W of "
                f"{v.get('gpu_power_limit_watts')}, SM {v.get('gpu_sm_clock_mhz')} MHz, "
                f"{len(v)} fields",
            )
        )
    began = time.process_time()
    for _ in range(100):
        reader.read(time.time())
    cost = (time.process_time() - began) / 100
    rows.append(
        (
            f"sampler overhead ({len(samples)} GPU(s), NVML)",
            f"{cost * 100:.3f} % of a core at 1 Hz",
            f"{cost * 1000:.2f} ms CPU per reading; target <= 1 % for 8 GPUs",
        )
    )
    return rows


def titan_gpu_cluster(out: Path, state: dict[str, Any]) -> list[Row]:
    from distributed import Client

    from service.client import Hub
    from service.demo import embedded_server

    server = embedded_server(console)
    url, token = server.__enter__()
    state.update(server=server, url=url, token=token)
    hub = Hub(url, token)
    nodes = hub.nodes()
    gpus = [g["uuid"] for node in nodes for g in node["gpus"]]
    if not gpus:
        return [("Titan GPU inventory", "FAILED", "the ledger found no GPU through NVML")]
    spec = {"n_workers": 1, "worker": {"gpu": 1, "memory": "32GiB"}}
    hub.apply({"type": "cluster", "name": "gpu-check", "spec": spec})
    running = hub.wait("cluster/gpu-check", {"running"}, timeout=300)
    client = Client(
        running["endpoints"]["scheduler"],
        security=hub.cluster_security("cluster/gpu-check"),
        timeout="60s",
    )
    client.wait_for_workers(1, timeout=120)
    state["client"] = client
    seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    [visible] = seen.values()
    logs = hub.logs("cluster/gpu-check", "worker-0", tail=200)["processes"]["worker-0"]["text"]
    (out / "worker-0.log").write_text(logs)
    cuda_worker = "-m dask cuda worker" in logs  # the entrypoint prints what it starts
    deadline = time.monotonic() + 30
    reading: dict[str, Any] = {}
    while time.monotonic() < deadline and not reading:
        for resource in hub.current():
            for source in resource["sources"]:
                if source["source"].startswith("gpu:"):
                    reading = source
        time.sleep(1)
    return [
        ("GPU inventory (ledger, NVML)", "ok", f"{len(gpus)} GPU(s): {', '.join(gpus)[:90]}"),
        (
            "dask cuda worker pinned by UUID",
            "ok" if visible in gpus and cuda_worker else "FAILED",
            f"worker-0 sees CUDA_VISIBLE_DEVICES={visible}; started as cuda worker: {cuda_worker}",
        ),
        (
            "GPU telemetry through the API",
            "ok" if reading else "FAILED",
            f"{reading.get('source', 'none')}: util "
            f"{reading.get('values', {}).get('gpu_utilization_percent')} %"
            if reading
            else "no gpu: source within 30 s",
        ),
    ]


def xgboost_paths(state: dict[str, Any], sizes: list[int], rounds: int) -> list[Row]:
    import xgboost
    from distributed import Client, LocalCluster

    from workers.training.xgboost_train import train_regression

    if not xgboost.build_info().get("USE_CUDA"):
        return [("XGBoost device=cuda", "SKIPPED", "this XGBoost has no CUDA (xgboost-cpu?)")]
    gpu_client = state["client"]
    cores = os.cpu_count() or 2
    rows: list[Row] = []
    cpu = LocalCluster(n_workers=cores // 2, threads_per_worker=2, dashboard_address=":0")
    with cpu, Client(cpu) as cpu_client:
        for rows_n in sizes:
            gpu, _ = train_regression(gpu_client, rows_n, 20, rounds, "cuda")
            base, _ = train_regression(cpu_client, rows_n, 20, rounds, "cpu")
            rows.append(
                (
                    f"XGBoost {rows_n / 1e6:g}M rows x 20, {rounds} rounds",
                    f"cuda {gpu.seconds:.2f}s vs cpu {base.seconds:.2f}s",
                    f"{base.seconds / gpu.seconds:.1f}x faster on the GPU; RMSE "
                    f"{gpu.rmse:.3f} (cuda) / {base.rmse:.3f} (cpu hist, {cores} cores)",
                )
            )
    return rows


def cupy_task(state: dict[str, Any]) -> list[Row]:
    from distributed import Client, LocalCluster

    from workers.training.cupy_task import gram_checksum

    gpu = gram_checksum(state["client"], 8192, 2048)
    cpu = LocalCluster(n_workers=2, threads_per_worker=4, dashboard_address=":0")
    with cpu, Client(cpu) as cpu_client:
        base = gram_checksum(cpu_client, 8192, 2048, "cpu")
    agree = abs(gpu["checksum"] - base["checksum"]) <= 1e-3 * abs(base["checksum"])
    return [
        (
            "CuPy task: sum(X @ X.T), 8192²",
            "ok" if gpu["device"] == "cuda" and agree else "FAILED",
            f"{gpu['device']} {gpu['seconds']:.2f}s vs cpu {base['seconds']:.2f}s; "
            f"checksums agree: {agree}",
        )
    ]


RAY_GPU_TASK = """
import os, ray
ray.init()
print("gpus", ray.cluster_resources().get("GPU", 0))
seen = ray.remote(num_gpus=1)(lambda: os.environ["CUDA_VISIBLE_DEVICES"])
print("visible", ray.get(seen.remote()))
"""


def ray_gpu_path(out: Path, state: dict[str, Any], rows: int) -> list[Row]:
    import subprocess
    import sys

    from service.client import Hub

    url, token = state["url"], state["token"]
    hub = Hub(url, token)
    gpus = [g["uuid"] for node in hub.nodes() for g in node["gpus"]]
    spec = {"engine": "ray", "n_workers": 1, "worker": {"gpu": 1, "nthreads": 4, "memory": "32GiB"}}
    hub.apply({"type": "cluster", "name": "ray-gpu-check", "spec": spec})
    running = hub.wait("cluster/ray-gpu-check", {"running"}, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TITAN_"))}
    env.update(
        RAY_ADDRESS=running["endpoints"]["ray"],
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=hub.credentials("cluster/ray-gpu-check")["ray_token"],
    )
    task = subprocess.run(
        [sys.executable, "-c", RAY_GPU_TASK], env=env, capture_output=True, text=True, timeout=300
    )
    (out / "ray_gpu_task.log").write_text(task.stdout + task.stderr)
    lines = dict(line.split(" ", 1) for line in task.stdout.splitlines() if " " in line)
    visible = lines.get("visible", "").strip()
    found: list[Row] = [
        (
            "Ray worker node pinned by UUID",
            "ok" if visible in gpus else "FAILED",
            f"cluster GPUs {lines.get('gpus', '?').strip()}; a num_gpus=1 task sees {visible}",
        )
    ]
    seconds: dict[str, float] = {}
    for device in ("cuda", "cpu"):
        command = [sys.executable, "-m", "workers.training", "--engine", "ray"]
        command += ["--device", device, "--rows", str(rows), "--output", str(out / f"ray-{device}")]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        (out / f"ray_training_{device}.log").write_text(done.stdout + done.stderr)
        result = json.loads([x for x in done.stdout.splitlines() if x.startswith("{")][-1])
        seconds[device] = float(result["seconds"])
    found.append(
        (
            f"XGBoost on Ray, {rows:,} rows",
            "ok",
            f"cuda {seconds['cuda']:.2f}s vs cpu hist {seconds['cpu']:.2f}s "
            f"({seconds['cpu'] / seconds['cuda']:.1f}x)",
        )
    )
    hub.delete("cluster/ray-gpu-check")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "gpu_check_errors.log"
    rows: list[Row] = []
    state: dict[str, Any] = {}
    step(rows, "NVML", lambda: nvml(args.out), log)
    step(rows, "Titan GPU cluster", lambda: titan_gpu_cluster(args.out, state), log)
    if "client" in state:
        step(rows, "XGBoost", lambda: xgboost_paths(state, args.sizes, args.rounds), log)
        step(rows, "CuPy", lambda: cupy_task(state), log)
        state["client"].close()
    if "server" in state:
        step(rows, "Ray GPU path", lambda: ray_gpu_path(args.out, state, args.sizes[0]), log)
    if "server" in state:
        state["server"].__exit__(None, None, None)
    table = Table("check", "result", "detail", title="Titan GPU check")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    (args.out / "gpu_check_table.txt").write_text("\n".join(" | ".join(row) for row in rows) + "\n")


if __name__ == "__main__":
    main()
