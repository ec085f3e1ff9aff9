"""``python -m workers.training``: train XGBoost on the attached Dask or Ray cluster.

With ``--engine dask`` connects to ``DASK_SCHEDULER_ADDRESS`` (set by Titan in
every process of a resource with a Dask cluster); with ``--engine ray`` to
``RAY_ADDRESS`` (a resource with a Ray cluster), training there with Ray
Train. Either way it trains on synthetic data or a Parquet/CSV file, saves
the model under ``--output`` (default ``$TITAN_OUTPUT_DIR``), reports train
time, rows/s and RMSE to the monitoring store, prints the result as JSON,
and exits non-zero if the model did not learn. With ``--publish MODEL_DIR`` a
model that learned is also published as a new version of a model folder
(``workers.model_folder``), where a serving app takes it up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.telemetry import report

if TYPE_CHECKING:
    from workers.training.xgboost_train import TrainingResult


def main() -> int:
    """Train once; exit 1 if RMSE is not below half the baseline, 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="python -m workers.training")
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic rows")
    parser.add_argument("--features", type=int, default=20, help="synthetic features")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: auto")
    parser.add_argument("--data", default=None, help="Parquet or CSV path instead of synthetic")
    parser.add_argument("--label", default="label", help="target column of --data")
    parser.add_argument("--output", default=os.environ.get("TITAN_OUTPUT_DIR", "."))
    parser.add_argument(
        "--publish",
        default=None,
        metavar="MODEL_DIR",
        help="also publish the model, if it learned, as a new version in this model folder "
        "(a shared folder's path as the recipe names it, e.g. /models)",
    )
    parser.add_argument(
        "--engine",
        choices=["dask", "ray"],
        default=default_engine(),
        help="the attached cluster to train on (default: ray if only RAY_ADDRESS is set)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Ray Train workers (default: one per node)"
    )
    args = parser.parse_args()
    if args.workers is not None and (args.engine != "ray" or args.workers < 1):
        parser.error("--workers: a number ≥ 1, with --engine ray (Dask trains on every worker)")
    from workers.training.xgboost_train import save

    if args.engine == "ray":
        from workers.training.ray_train import train_on_ray

        result, booster = train_on_ray(
            args.rows, args.features, args.rounds, args.device, args.workers, args.data, args.label
        )
    else:
        result, booster = train_on_dask(args)
    model = save(result, booster, Path(args.output))
    reported = report("training", result.metrics(), {"device": result.device, "model": str(model)})
    print(f"model saved to {model}; metrics {'reported' if reported else 'not reported'}")
    learned = result.rmse < result.baseline_rmse / 2
    published = publish_if(learned, args.publish, result, booster)
    print(json.dumps({**dataclasses.asdict(result), "model": str(model), **published}), flush=True)
    return 0 if learned else 1


def publish_if(
    learned: bool, folder: str | None, result: TrainingResult, booster: Any
) -> dict[str, str]:
    """Publish the model to ``folder`` if one is given and the model learned; the version
    and its folder (none if not published). A model that did not learn never replaces
    the one being served."""
    if folder is None:
        return {}
    if not learned:
        print(
            f"not published to {folder}: RMSE {result.rmse:.4g} is not below half the "
            f"baseline {result.baseline_rmse:.4g}"
        )
        return {}
    from workers.model_folder import publish, shared_folder
    from workers.training.xgboost_train import model_metadata

    version = publish(booster, model_metadata(result), shared_folder(folder))
    print(f"published model version {version.name} to {version.folder}")
    return {"version": version.name, "published": str(version.folder)}


def default_engine() -> str:
    """``ray`` when only a Ray cluster is attached (``RAY_ADDRESS`` without
    ``DASK_SCHEDULER_ADDRESS``), else ``dask``."""
    ray_only = os.environ.get("RAY_ADDRESS") and not os.environ.get("DASK_SCHEDULER_ADDRESS")
    return "ray" if ray_only else "dask"


def train_on_dask(args: argparse.Namespace) -> tuple[TrainingResult, Any]:
    """The result and booster of training on the attached Dask cluster."""
    from workers.training.attach import attached_client
    from workers.training.xgboost_train import table_data, train_regression

    with attached_client() as client:
        data = table_data(args.data, args.label) if args.data else None
        return train_regression(client, args.rows, args.features, args.rounds, args.device, data)


if __name__ == "__main__":
    sys.exit(main())
