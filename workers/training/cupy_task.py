"""A CuPy example task: a Dask array computation that runs on the GPUs where there are some.

``python -m workers.training.cupy_task --size 8192`` on a resource with an
attached cluster multiplies a random ``size x size`` matrix by its transpose
and sums the result, block by block: with CuPy on GPU workers (the blocks
live in GPU memory), with NumPy on CPU workers. It prints the device, the
checksum and the time as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from workers.training.attach import attached_client
from workers.training.xgboost_train import on_gpu


def worker_has_cupy_gpu() -> bool:
    """True on a worker with a GPU handed to it and CuPy installed."""
    if not os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return False
    try:
        import cupy

        return bool(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no CuPy, or no usable device
        return False


def gram_checksum(client: Any, size: int, chunk: int, device: str | None = None) -> dict[str, Any]:
    """Sum of ``X @ X.T`` for a seeded random ``X``: the same answer on GPU and CPU."""
    import dask.array as da

    if device is None:
        answers = client.run(worker_has_cupy_gpu)
        device = "cuda" if answers and all(answers.values()) else "cpu"
    x = da.random.RandomState(0).random_sample((size, size), chunks=(chunk, chunk))
    x = x.astype("float32")
    if device == "cuda":
        x = x.map_blocks(on_gpu)
    started = time.perf_counter()
    total = (x @ x.T).sum()
    value = float(client.compute(total).result())
    return {
        "device": device,
        "size": size,
        "checksum": value,
        "seconds": time.perf_counter() - started,
    }


def main() -> int:
    """Run the task on ``DASK_SCHEDULER_ADDRESS`` and print the result."""
    parser = argparse.ArgumentParser(prog="python -m workers.training.cupy_task")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    args = parser.parse_args()
    with attached_client() as client:
        print(json.dumps(gram_checksum(client, args.size, args.chunk, args.device)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
