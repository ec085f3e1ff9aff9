"""``titan demo``: the whole path on one machine, with results and timings.

Starts an embedded server if none answers, applies the example CPU cluster
recipe, runs a Dask computation and an XGBoost training on that cluster,
prints what happened, and tears everything down (including the server it
started).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from service.client import Hub, ResourceRef, TitanClientError

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "cpu-cluster.json"
DEMO_NAME = "titan-demo"
OnChange = Callable[[dict[str, Any]], None]


@contextlib.contextmanager
def embedded_server(console: Console) -> Iterator[tuple[str, str]]:
    """A ``titan server`` on a free loopback port with its own data directory."""
    data_dir = Path(tempfile.mkdtemp(prefix="titan-demo-"))
    env = {**os.environ, "TITAN_DATA_DIR": str(data_dir), "TITAN_PORT": "0"}
    # Everything in one folder, gone after; only the admin runs things here (no OS accounts).
    env["TITAN_USERS_DIR"] = str(data_dir / "users")
    for name in ("TITAN_URL", "TITAN_DATABASE_URL", "TITAN_OS_ACCOUNTS"):
        env.pop(name, None)
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "server"], env=env, stdout=log, stderr=log
    )
    ok = False
    try:
        record, token_file = data_dir / "server.json", data_dir / "admin-token"
        deadline = time.monotonic() + 60
        while not (record.exists() and token_file.exists()):
            if server.poll() is not None or time.monotonic() > deadline:
                raise TitanClientError(f"the embedded server did not start; see {log.name}")
            time.sleep(0.1)
        url = json.loads(record.read_text())["url"]
        while not Hub(url, "").healthy():
            time.sleep(0.1)
        console.print(f"started an embedded server at {url} (data in {data_dir})")
        yield url, token_file.read_text().strip()
        ok = True
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        if ok:  # keep the folder and its server.log when something went wrong
            shutil.rmtree(data_dir, ignore_errors=True)


def run_demo(
    hub: Hub, console: Console, on_change: OnChange, workers: int = 2, rows: int = 200_000
) -> None:
    """Run the demo against ``hub``'s server, or an embedded one if none answers."""
    if hub.healthy() and hub.token:
        console.print(f"using the Titan server at {hub.url}")
        _demo(hub, console, on_change, workers, rows)
        return
    with embedded_server(console) as (url, token):
        _demo(Hub(url, token), console, on_change, workers, rows)


def _demo(hub: Hub, console: Console, on_change: OnChange, workers: int, rows: int) -> None:
    from distributed import Client

    from workers.training.xgboost_train import train_regression

    recipe = json.loads(RECIPE.read_text())
    recipe["name"] = DEMO_NAME
    recipe["spec"]["n_workers"] = workers
    timings: list[tuple[str, float]] = []
    started = time.perf_counter()
    result = hub.apply(recipe)
    target = ResourceRef("cluster", DEMO_NAME, result["resource"]["owner"])
    console.print(f"applied recipes/cpu-cluster.json as {target} ({result['action']})")
    try:
        cluster = hub.wait(target, {"running"}, timeout=300, on_change=on_change)
        timings.append(("cluster ready", time.perf_counter() - started))
        address = cluster["endpoints"]["scheduler"]
        console.print(f"scheduler {address}; dashboard {cluster['endpoints'].get('dashboard')}")
        with Client(address, security=hub.cluster_security(target), timeout="30s") as client:
            client.wait_for_workers(workers, timeout=120)
            value, seconds = _compute(client)
            timings.append(("dask sum of 0..10^8", seconds))
            console.print(f"dask: sum(range(10**8)) = {value} (exact: {value == _expected()})")
            trained, _booster = train_regression(client, rows=rows)
            timings.append((f"xgboost {trained.rounds} rounds ({trained.device})", trained.seconds))
            console.print(
                f"xgboost on {trained.device}: RMSE {trained.rmse:.3f} vs "
                f"{trained.baseline_rmse:.3f} for predicting the mean "
                f"({trained.rows} rows, {trained.features} features)"
            )
    finally:
        teardown = time.perf_counter()
        hub.delete(target)
        hub.wait_gone(target, timeout=120)
        timings.append(("teardown", time.perf_counter() - teardown))
    table = Table("step", "seconds")
    for step, seconds in timings:
        table.add_row(step, f"{seconds:.2f}")
    console.print(table)
    console.print("demo finished: cluster deleted, no process left behind")


def _expected() -> int:
    n = 10**8
    return n * (n - 1) // 2


def _compute(client: Any) -> tuple[int, float]:
    import dask.array as da

    started = time.perf_counter()
    value = int(client.compute(da.arange(10**8, chunks=10**7, dtype="int64").sum()).result())
    return value, time.perf_counter() - started
