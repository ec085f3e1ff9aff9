"""``python -m workers.training``: train XGBoost on the attached Dask cluster, print JSON.

Connects to ``DASK_SCHEDULER_ADDRESS`` (set by Titan in every process of a
resource with a Dask cluster) and exits non-zero if the model did not learn.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys


def main() -> int:
    """Train once and print the result; exit 1 if RMSE is not below half the baseline."""
    parser = argparse.ArgumentParser(prog="python -m workers.training")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    args = parser.parse_args()
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        print("DASK_SCHEDULER_ADDRESS is not set: attach a dask_cluster to this job", flush=True)
        return 2
    from distributed import Client

    from workers.training.xgboost_train import train_regression

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(1, timeout=120)
        result = train_regression(client, args.rows, args.features, args.rounds, args.device)
    print(json.dumps(dataclasses.asdict(result)), flush=True)
    return 0 if result.rmse < result.baseline_rmse / 2 else 1


if __name__ == "__main__":
    sys.exit(main())
