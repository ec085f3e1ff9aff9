"""The Dask cluster attached to the job this runs in."""

from __future__ import annotations

import os
from typing import Any


def attached_client(workers: int = 1) -> Any:
    """A ``distributed.Client`` of ``DASK_SCHEDULER_ADDRESS`` once ``workers`` have joined.

    Exits with code 2 and says what to do when no cluster is attached.
    """
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        print("DASK_SCHEDULER_ADDRESS is not set: attach a dask_cluster to this job", flush=True)
        raise SystemExit(2)
    from distributed import Client

    client = Client(address, timeout="60s")
    client.wait_for_workers(workers, timeout=120)
    return client
