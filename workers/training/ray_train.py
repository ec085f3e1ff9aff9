"""Distributed XGBoost regression on the attached Ray cluster, with Ray Train.

Connects with ``ray.init()`` to ``RAY_ADDRESS``: Titan sets it to the
cluster's Ray Client address (``ray://host:port``) and the cluster's token in
``RAY_AUTH_TOKEN`` with ``RAY_AUTH_MODE=token``. A Ray Client process cannot
run Ray Train itself, so the run is driven from a task on the head node.

Ray's ``XGBoostTrainer`` starts one Train worker per Ray worker node. Each
generates its part of the Dask path's synthetic problem (or reads its shard
of a Parquet/CSV file as a Ray Dataset), builds a ``QuantileDMatrix`` and runs
``xgboost.train`` in the collective the trainer sets up.
``RayTrainReportCallback`` reports the RMSE and checkpoints the booster, which
is read back on the node that wrote it, so no storage need be shared between
the nodes and this process.

The device is ``cuda`` (one GPU per worker) when the cluster has GPUs, else
``cpu`` with the ``hist`` tree method. ``ray`` is imported only here, so
machines without the ``ray`` extra still import ``workers.training``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from typing import Any

from workers.training.xgboost_train import (
    NOISE,
    TrainingResult,
    booster_params,
    is_csv,
    require_label,
    signal_weights,
)

HEAD_RESOURCE = "node:__internal_head__"  # the resource only a Ray head node has
# What Ray Client says when its proxy could not start a session's own server (seen now and
# then on a new cluster's first connection on a busy machine): the server failed to start,
# or died at once and the proxy found it a zombie (ray-project/ray#63202, a race in the
# proxy's fork), or the proxy did not answer within Ray Client's connection timeout (seen
# on a machine running several test suites at once). A second try gets a new one.
LOST_SESSION = (
    "Starting Ray client server failed",
    "but it's a zombie",
    "ray client connection timeout",
)


def lost_session(message: str) -> bool:
    """Whether a failed Ray Client connection lost the session server its proxy started."""
    return any(marker in message for marker in LOST_SESSION)


def connect() -> Any:
    """The ``ray`` module, connected to ``RAY_ADDRESS``.

    Exits with code 2 and says what to do when Ray is not installed, no
    cluster is attached, or it cannot be reached.
    """
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        print(
            'RAY_ADDRESS is not set: attach a Ray cluster to this job ("cluster": '
            '{"engine": "ray", ...} in its recipe)',
            flush=True,
        )
        raise SystemExit(2)
    try:
        import ray
    except ImportError:
        print(
            "--engine ray needs Ray on this machine: pip install 'titan[ray]'",
            flush=True,
        )
        raise SystemExit(2) from None
    for attempt in (1, 2):
        try:
            ray.init(address=address, logging_level=logging.WARNING)
            return ray
        except ConnectionError as error:
            if attempt == 1 and lost_session(str(error)):
                continue  # Ray's client proxy lost the session server it started: retry once
            print(
                f"cannot reach the Ray cluster at RAY_ADDRESS={address} ({error}): is it "
                "running, and is RAY_AUTH_TOKEN its token?",
                flush=True,
            )
            raise SystemExit(2) from None
    raise AssertionError("unreachable")


def worker_nodes(ray: Any) -> list[dict[str, Any]]:
    """The live nodes of the connected cluster other than its head."""
    return [
        node
        for node in ray.nodes()
        if node["Alive"] and HEAD_RESOURCE not in node.get("Resources", {})
    ]


def synthetic_part(
    rows: int, features: int, part: int, parts: int, seed: int = 0
) -> tuple[Any, Any]:
    """Part ``part`` of ``parts`` of a synthetic problem of ``rows`` x ``features``:
    ``X`` and ``y = X @ w + noise`` as float32 NumPy arrays (the Dask path's signal
    and noise; its own draws)."""
    import numpy as np

    size = rows // parts + (part < rows % parts)
    draws = np.random.default_rng([seed, part])
    x = draws.normal(size=(size, features))
    y = x @ signal_weights(features, seed) + draws.normal(scale=NOISE, size=size)
    return x.astype("float32"), y.astype("float32")


def table_dataset(ray: Any, path: str, label: str) -> Any:
    """A Ray Dataset of a Parquet or CSV file (or folder) the cluster's nodes can read."""
    data = ray.data.read_csv(path) if is_csv(path) else ray.data.read_parquet(path)
    require_label(data.columns(), label, path)
    return data


def train_on_ray(
    rows: int = 200_000,
    features: int = 20,
    rounds: int = 50,
    device: str | None = None,
    workers: int | None = None,
    data: str | None = None,
    label: str = "label",
) -> tuple[TrainingResult, Any]:
    """Train gradient-boosted trees on the attached Ray cluster; the result and the booster.

    ``workers`` Ray Train workers (default: one per Ray worker node, each with
    that node's CPUs) train on ``data`` (a Parquet/CSV path the nodes can
    read) or on a synthetic problem of ``rows`` x ``features``. Exits with
    code 2 when the cluster cannot hold the workers asked for, rather than
    waiting for it forever.
    """
    ray = connect()
    try:
        device, n_workers, per_worker = plan_workers(ray, device, workers)
        # Ray Train and Ray Data need a full Ray worker, which a Ray Client
        # process is not: the run is driven from a task on the head node.
        drive = ray.remote(num_cpus=0)(_drive).options(scheduling_strategy=_on_head(ray))
        run = drive.remote(rows, features, rounds, device, n_workers, per_worker, data, label)
        result, booster = ray.get(run)
        return result, booster
    finally:
        ray.shutdown()


def plan_workers(
    ray: Any, device: str | None, workers: int | None
) -> tuple[str, int, dict[str, float]]:
    """The device, the number of Ray Train workers and each one's resources.

    ``cuda`` (a GPU per worker) where the cluster has GPUs unless ``device``
    says otherwise; one worker per worker node holding that node's CPUs
    unless ``workers`` says how many (then a CPU each). Exits with code 2 if
    the cluster has too few CPUs or GPUs for them.
    """
    total = ray.cluster_resources()
    device = device or ("cuda" if total.get("GPU", 0) > 0 else "cpu")
    nodes = worker_nodes(ray)
    n_workers = workers or max(1, len(nodes))
    cpus = min((n["Resources"].get("CPU", 1) for n in nodes), default=1)
    per_worker = {"CPU": max(1.0, float(int(cpus))) if workers is None else 1.0}
    if device == "cuda":
        per_worker["GPU"] = 1.0
    for resource, amount in per_worker.items():
        if total.get(resource, 0) < amount * n_workers:
            print(
                f"{n_workers} Ray Train workers need {amount * n_workers:g} {resource} "
                f"({amount:g} each): the Ray cluster has {total.get(resource, 0):g}; "
                "pass --workers or --device cpu, or give the cluster more workers",
                flush=True,
            )
            raise SystemExit(2)
    return device, n_workers, per_worker


def _on_head(ray: Any) -> Any:
    """A scheduling strategy for the cluster's head node (any node if it has none)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    heads = [n["NodeID"] for n in ray.nodes() if n["Alive"] and HEAD_RESOURCE in n["Resources"]]
    return NodeAffinitySchedulingStrategy(heads[0], soft=True) if heads else "DEFAULT"


def _drive(
    rows: int,
    features: int,
    rounds: int,
    device: str,
    n_workers: int,
    per_worker: dict[str, float],
    data: str | None,
    label: str,
) -> tuple[TrainingResult, Any]:
    """Drive one Ray Train run (inside the cluster): data, ``fit``, the booster back."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.xgboost import XGBoostTrainer

    datasets = {}
    if data is not None:
        # Read now, while no Train worker holds the CPUs the reading tasks need.
        datasets["train"] = table_dataset(ray, data, label).materialize()
    config = {
        "params": booster_params(device),
        "rounds": rounds,
        "label": label,
        "synthetic": (rows, features) if data is None else None,
    }
    storage = os.path.join(tempfile.gettempdir(), f"titan-ray-train-{uuid.uuid4().hex[:8]}")
    trainer = XGBoostTrainer(
        _train_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=n_workers,
            use_gpu=device == "cuda",
            resources_per_worker=per_worker,
            placement_strategy="SPREAD",
        ),
        run_config=RunConfig(name="xgboost", storage_path=storage),
        datasets=datasets,
    )
    try:
        output = trainer.fit()
        metrics = output.metrics or {}
        if output.checkpoint is None or "node" not in metrics:
            raise RuntimeError(f"Ray Train run {storage} ended without checkpointing the booster")
        booster = _fetch_booster(ray, output.checkpoint, metrics["node"], storage)
    finally:
        shutil.rmtree(storage, ignore_errors=True)  # the markers Ray Train left here
    shape = (int(metrics["rows"]), int(metrics["features"]))
    rmse, baseline = float(metrics["rmse"]), float(metrics["baseline"])
    result = TrainingResult(device, *shape, rounds, rmse, baseline, float(metrics["seconds"]))
    return result, booster


def _train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: its part of the data (generated here, or its shard of
    the dataset) into a ``QuantileDMatrix``, then ``xgboost.train`` in the
    collective. Rank 0 reports the RMSE, the baseline, the data's shape, the
    train seconds and its node, and checkpoints the booster at the end."""
    import numpy as np
    import ray
    import ray.train
    import xgboost
    from ray.train.xgboost import RayTrainReportCallback
    from xgboost import collective

    label, context = config["label"], ray.train.get_context()
    if config["synthetic"] is not None:
        rows, features = config["synthetic"]
        rank, size = context.get_world_rank(), context.get_world_size()
        x, y = synthetic_part(rows, features, rank, size)
    else:
        frame = ray.train.get_dataset_shard("train").materialize().to_pandas()
        x = frame.drop(columns=[label]).to_numpy("float32")
        y = frame[label].to_numpy("float32")
        del frame
    # The baseline is the RMSE of always predicting the mean: the labels' std.
    sums = np.array([len(y), y.sum(dtype="float64"), np.square(y, dtype="float64").sum()])
    count, total, squares = collective.allreduce(sums, collective.Op.SUM)
    mean = total / max(count, 1)
    data = {
        "rows": count,
        "features": x.shape[1],
        "baseline": float(np.sqrt(max(squares / max(count, 1) - mean * mean, 0.0))),
        "node": ray.get_runtime_context().get_node_id(),
    }
    started = time.perf_counter()
    matrix = xgboost.QuantileDMatrix(x, y)
    del x, y

    def with_data(metrics: dict[str, Any]) -> dict[str, Any]:
        return {**metrics, **data, "seconds": time.perf_counter() - started}

    class ReportAtEnd(RayTrainReportCallback):
        """Reports once, with the checkpoint, after the last round: each report
        waits for the controller's next poll (2 s), so one a round would
        dominate the run."""

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            self._evals_log = evals_log  # what after_training reports
            return False

    report = ReportAtEnd(metrics={"rmse": "train-rmse"}, results_postprocessing_fn=with_data)
    xgboost.train(
        config["params"],
        matrix,
        num_boost_round=config["rounds"],
        evals=[(matrix, "train")],
        verbose_eval=False,
        callbacks=[report],
    )


def _fetch_booster(ray: Any, checkpoint: Any, node: str, storage: str) -> Any:
    """The booster in ``checkpoint``, read on ``node`` (the one that wrote it), which
    then deletes Ray Train's run folder ``storage``."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def read(checkpoint: Any, storage: str) -> Any:
        from ray.train.xgboost import RayTrainReportCallback

        try:
            return RayTrainReportCallback.get_model(checkpoint)
        finally:
            shutil.rmtree(storage, ignore_errors=True)

    on_node = NodeAffinitySchedulingStrategy(node, soft=False)
    return ray.get(read.options(scheduling_strategy=on_node).remote(checkpoint, storage))
