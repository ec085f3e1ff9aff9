"""Distributed XGBoost regression on a Dask cluster.

The device is chosen per cluster: ``cuda`` when every worker sees a GPU and
XGBoost was built with CUDA, else ``cpu`` with the ``hist`` tree method. GPU
libraries are never imported on CPU machines.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced and how long it took."""

    device: str
    rows: int
    features: int
    rounds: int
    rmse: float
    baseline_rmse: float
    seconds: float


def worker_can_use_gpu() -> bool:
    """True on a worker that was handed a GPU and has a CUDA build of XGBoost."""
    if not os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return False
    import xgboost

    return bool(xgboost.build_info().get("USE_CUDA"))


def choose_device(client: Any) -> str:
    """``"cuda"`` if every worker of ``client``'s cluster can train on a GPU, else ``"cpu"``."""
    answers = client.run(worker_can_use_gpu)
    return "cuda" if answers and all(answers.values()) else "cpu"


def synthetic_regression(
    rows: int, features: int, chunk_rows: int, seed: int = 0
) -> tuple[Any, Any]:
    """A dask array ``X`` and target ``y = X @ w + noise`` with a known linear signal."""
    import dask.array as da
    import numpy as np

    weights = np.random.default_rng(seed).normal(size=features)
    state = da.random.RandomState(seed)
    x = state.normal(size=(rows, features), chunks=(chunk_rows, features))
    noise = state.normal(scale=0.1, size=(rows,), chunks=(chunk_rows,))
    return x, x @ weights + noise


def train_regression(
    client: Any,
    rows: int = 200_000,
    features: int = 20,
    rounds: int = 50,
    device: str | None = None,
) -> TrainingResult:
    """Train gradient-boosted trees on the cluster; RMSE should fall far below the baseline."""
    from xgboost import dask as dxgb

    device = device or choose_device(client)
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    x, y = synthetic_regression(rows, features, chunk_rows=max(1000, rows // (4 * n_workers)))
    x, y = client.persist([x, y])
    baseline = float(y.std().compute())  # RMSE of always predicting the mean
    started = time.perf_counter()
    train = dxgb.DaskQuantileDMatrix(client, x, y)
    params = {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "device": device,
        "max_depth": 6,
        "eta": 0.3,
    }
    output = dxgb.train(
        client, params, train, num_boost_round=rounds, evals=[(train, "train")], verbose_eval=False
    )
    seconds = time.perf_counter() - started
    rmse = float(output["history"]["train"]["rmse"][-1])
    return TrainingResult(device, rows, features, rounds, rmse, baseline, seconds)
