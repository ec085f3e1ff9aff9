"""``python -m workers.training``: train XGBoost on the attached Dask cluster.

Connects to ``DASK_SCHEDULER_ADDRESS`` (set by Titan in every process of a
resource with a Dask cluster), trains on synthetic data or a Parquet/CSV
file, saves the model under ``--output`` (default ``$TITAN_OUTPUT_DIR``),
reports train time, rows/s and RMSE to the monitoring store, prints the
result as JSON, and exits non-zero if the model did not learn.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from workers.telemetry import report


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
    args = parser.parse_args()
    from workers.training.attach import attached_client
    from workers.training.xgboost_train import save, table_data, train_regression

    with attached_client() as client:
        data = table_data(args.data, args.label) if args.data else None
        result, booster = train_regression(
            client, args.rows, args.features, args.rounds, args.device, data
        )
    model = save(result, booster, Path(args.output))
    reported = report("training", result.metrics(), {"device": result.device, "model": str(model)})
    print(f"model saved to {model}; metrics {'reported' if reported else 'not reported'}")
    print(json.dumps({**dataclasses.asdict(result), "model": str(model)}), flush=True)
    return 0 if result.rmse < result.baseline_rmse / 2 else 1


if __name__ == "__main__":
    sys.exit(main())
