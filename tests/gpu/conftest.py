"""GPU tests: the real NVML, dask cuda worker, XGBoost's CUDA path and CuPy.

Skipped where NVML finds no GPU (every CI machine); ``benchmarks/gpu_check.sh``
and ``pytest -m gpu`` run them on a machine with one.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import start_server  # noqa: F401 - a real server
from workers.telemetry import GpuReader


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if GpuReader.open(visible=None) is None:
        skip = pytest.mark.skip(reason="no GPU readable through NVML here")
        for item in items:
            if "tests/gpu/" in str(item.fspath):
                item.add_marker(skip)
