"""A stand-in for the ``pynvml`` module, answering from recorded readings.

Only for machines without a GPU: it answers the NVML calls the sampler makes,
in NVML's units, and raises ``NVMLError`` where a GPU would say "not supported".
GPU-marked tests run the real library where a GPU exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

RECORDING = Path(__file__).parent / "data" / "nvml_two_gpus.json"


class NVMLError(Exception):
    """What pynvml raises; here always 'not supported'."""


class FakeNvml:
    """The subset of pynvml the sampler calls."""

    NVML_CLOCK_SM = 1
    NVML_PCIE_UTIL_TX_BYTES = 0
    NVML_PCIE_UTIL_RX_BYTES = 1
    NVMLError = NVMLError

    def __init__(self, recording: Path = RECORDING, fail_init: bool = False) -> None:
        self.gpus: list[dict[str, Any]] = json.loads(recording.read_text())["gpus"]
        self.fail_init = fail_init
        self.initialised = False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise NVMLError("NVML Shared Library Not Found")
        self.initialised = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, gpu: dict[str, Any]) -> str:
        return str(gpu["uuid"])

    def nvmlDeviceGetName(self, gpu: dict[str, Any]) -> bytes:
        return str(gpu["name"]).encode()  # older pynvml returns bytes

    def nvmlDeviceGetUtilizationRates(self, gpu: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**gpu["utilization"])

    def nvmlDeviceGetMemoryInfo(self, gpu: dict[str, Any]) -> SimpleNamespace:
        memory = gpu["memory"]
        return SimpleNamespace(used=memory["used"], total=memory["total"])

    def nvmlDeviceGetTemperature(self, gpu: dict[str, Any], sensor: int) -> int:
        return int(gpu["temperature"])

    def nvmlDeviceGetPowerUsage(self, gpu: dict[str, Any]) -> int:
        return int(gpu["power_mw"])

    def nvmlDeviceGetEnforcedPowerLimit(self, gpu: dict[str, Any]) -> int:
        return int(gpu["power_limit_mw"])

    def nvmlDeviceGetClockInfo(self, gpu: dict[str, Any], clock: int) -> int:
        return int(gpu["sm_clock_mhz"])

    def nvmlDeviceGetPcieThroughput(self, gpu: dict[str, Any], counter: int) -> int:
        value = gpu["pcie_rx_kbps" if counter == self.NVML_PCIE_UTIL_RX_BYTES else "pcie_tx_kbps"]
        return int(_supported(value))

    def nvmlDeviceGetTotalEccErrors(self, gpu: dict[str, Any], kind: int, counter: int) -> int:
        ecc = _supported(gpu["ecc"])
        return int(ecc["corrected" if kind == 0 else "uncorrected"])

    def nvmlDeviceGetCurrentClocksEventReasons(self, gpu: dict[str, Any]) -> int:
        return int(gpu["throttle_reasons"])

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: dict[str, Any]) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid) for pid in _supported(gpu["pids"])]


def _supported(value: Any) -> Any:
    if value is None:
        raise NVMLError("Not Supported")
    return value
