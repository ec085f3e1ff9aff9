"""Distributed XGBoost regression on a Dask cluster, on GPUs where the workers have them.

The device is chosen per cluster: ``cuda`` when every worker sees a GPU and
XGBoost was built with CUDA (data then lives on the GPUs as CuPy-backed Dask
arrays), else ``cpu`` with the ``hist`` tree method. GPU libraries are
imported only on GPU workers, never on CPU machines.

The result, the synthetic problem, the booster's parameters and the saving
are shared with the Ray path (``ray_train.py``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
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

    @property
    def rows_per_second(self) -> float:
        """Training rows processed per second of training, all rounds counted."""
        return self.rows * self.rounds / self.seconds if self.seconds > 0 else 0.0

    def metrics(self) -> dict[str, float]:
        """The figures reported to the monitoring store."""
        return {
            "training_seconds": self.seconds,
            "training_rows_per_second": self.rows_per_second,
            "training_rmse": self.rmse,
            "training_baseline_rmse": self.baseline_rmse,
            "training_rows": float(self.rows),
            "training_rounds": float(self.rounds),
        }


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


NOISE = 0.1  # standard deviation of the synthetic target's noise: the best reachable RMSE


def signal_weights(features: int, seed: int = 0) -> Any:
    """The weights ``w`` of the synthetic problems' linear signal ``y = X @ w + noise``."""
    import numpy as np

    return np.random.default_rng(seed).normal(size=features)


def synthetic_regression(
    rows: int, features: int, chunk_rows: int, seed: int = 0
) -> tuple[Any, Any]:
    """A dask array ``X`` and target ``y = X @ w + noise`` with a known linear signal."""
    import dask.array as da

    weights = signal_weights(features, seed)
    state = da.random.RandomState(seed)
    x = state.normal(size=(rows, features), chunks=(chunk_rows, features))
    noise = state.normal(scale=NOISE, size=(rows,), chunks=(chunk_rows,))
    return x.astype("float32"), (x @ weights + noise).astype("float32")


def is_csv(path: str) -> bool:
    """True if ``path`` names CSV data (else it is read as Parquet)."""
    return path.endswith((".csv", ".csv.gz"))


def require_label(columns: Any, label: str, path: str) -> None:
    """Raise ``ValueError`` naming the known columns if ``label`` is not among ``columns``."""
    if label not in columns:
        known = ", ".join(map(str, columns))
        raise ValueError(f"--label {label!r} is not a column of {path}; columns: {known}")


def table_data(path: str, label: str) -> tuple[Any, Any]:
    """``X`` and ``y`` from a Parquet or CSV file (or folder / glob), ``label`` being ``y``."""
    import dask.dataframe as dd

    frame = dd.read_csv(path) if is_csv(path) else dd.read_parquet(path)
    require_label(frame.columns, label, path)
    features = frame.drop(columns=[label]).astype("float32")
    target = frame[label].astype("float32")
    return features.to_dask_array(lengths=True), target.to_dask_array(lengths=True)


def booster_params(device: str) -> dict[str, Any]:
    """XGBoost's parameters for the regression, ``device`` being ``"cpu"`` or ``"cuda"``."""
    return {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "device": device,
        "max_depth": 6,
        "eta": 0.3,
    }


def on_gpu(block: Any) -> Any:
    """A NumPy block moved to the worker's GPU (runs on the worker; CuPy imported there)."""
    import cupy

    return cupy.asarray(block)


def train_regression(
    client: Any,
    rows: int = 200_000,
    features: int = 20,
    rounds: int = 50,
    device: str | None = None,
    data: tuple[Any, Any] | None = None,
) -> tuple[TrainingResult, Any]:
    """Train gradient-boosted trees on the cluster; the result and the booster.

    ``data`` is ``(X, y)`` as Dask arrays; without it a synthetic problem of
    ``rows`` x ``features`` is generated on the workers. ``client`` is made
    the current client meanwhile, so a process holding several clients (a
    notebook attached to two clusters) trains on the one it names.
    """
    with client.as_current():
        return _train(client, rows, features, rounds, device, data)


def _train(
    client: Any,
    rows: int,
    features: int,
    rounds: int,
    device: str | None,
    data: tuple[Any, Any] | None,
) -> tuple[TrainingResult, Any]:
    from xgboost import dask as dxgb

    device = device or choose_device(client)
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    if data is None:
        chunk = max(1000, rows // (4 * n_workers))
        x, y = synthetic_regression(rows, features, chunk_rows=chunk)
    else:
        x, y = data
    if device == "cuda":
        x, y = x.map_blocks(on_gpu), y.map_blocks(on_gpu)
    x, y = client.persist([x, y])
    baseline = float(client.compute(y.std()).result())  # RMSE of always predicting the mean
    started = time.perf_counter()
    train = dxgb.DaskQuantileDMatrix(client, x, y)
    output = dxgb.train(
        client,
        booster_params(device),
        train,
        num_boost_round=rounds,
        evals=[(train, "train")],
        verbose_eval=False,
    )
    seconds = time.perf_counter() - started
    rmse = float(output["history"]["train"]["rmse"][-1])
    shape = (int(x.shape[0]), int(x.shape[1]))
    result = TrainingResult(device, shape[0], shape[1], rounds, rmse, baseline, seconds)
    return result, output["booster"]


def save(result: TrainingResult, booster: Any, folder: Path) -> Path:
    """Write ``model.json`` and ``metrics.json`` into ``folder``; the model's path."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.json"
    booster.save_model(str(model))
    metrics = {**asdict(result), "rows_per_second": result.rows_per_second}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return model


def model_metadata(result: TrainingResult) -> dict[str, Any]:
    """What a published model says of itself: features, metric, how and where it was
    trained (the resource and job run, where Titan ran it)."""
    import xgboost

    return {
        "features": {"count": result.features},
        "metric": {"name": "rmse", "value": result.rmse, "baseline": result.baseline_rmse},
        "training": {
            "rows": result.rows,
            "rounds": result.rounds,
            "device": result.device,
            "seconds": result.seconds,
        },
        "source": {
            "resource": os.environ.get("TITAN_RESOURCE"),
            "run": os.environ.get("TITAN_JOB_RUN"),
        },
        "xgboost_version": xgboost.__version__,
    }
