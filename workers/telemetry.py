"""The telemetry sampler: what every process Titan starts reports about its hardware.

One :class:`Sampler` runs per process (never per Dask thread). It reads the
GPUs the process was given through NVML (nvidia-ml-py), or the host through
psutil where there is no GPU, once per ``interval`` seconds, and pushes the
samples in batches to ``POST $TITAN_URL/api/v1/telemetry`` with the process's
own token. While the control plane is unreachable the samples wait in a
bounded buffer; when it is full the oldest are dropped and counted, and
pushes are retried with exponential backoff.

NVML and psutil are imported lazily; the sampler never fails its process.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
DEFAULT_PUSH_SECONDS = 5.0
DEFAULT_CAPACITY = 20_000  # samples kept while the control plane is away
BATCH_SIZE = 2_000  # samples per POST: as columns, ~600 KB of GPU samples (limit 1 MiB)
MAX_BACKOFF = 60.0


@dataclass
class Sample:
    """One reading from one source: a GPU (``gpu:<uuid>``), a host, or a program."""

    time: float
    source: str
    values: dict[str, float]
    info: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The wire form ``POST /api/v1/telemetry`` accepts."""
        body: dict[str, Any] = {"time": self.time, "source": self.source, "values": self.values}
        if self.info:
            body["info"] = self.info
        return body


class Reader(Protocol):
    """Something that yields samples when asked, e.g. the GPUs or the host."""

    def read(self, now: float) -> list[Sample]:
        """The current readings, stamped ``now``."""


class GpuReader:
    """Reads the GPUs this process may use through NVML.

    Fields a GPU does not report (ECC on consumer cards, PCIe counters in
    some VMs) are left out of its sample rather than failing it.
    """

    def __init__(self, nvml: Any, handles: Sequence[Any]) -> None:
        self.nvml = nvml
        self.handles = list(handles)
        self.uuids = [_text(nvml.nvmlDeviceGetUUID(handle)) for handle in self.handles]
        self.names = [_text(nvml.nvmlDeviceGetName(handle)) for handle in self.handles]

    @classmethod
    def open(cls, visible: str | None = None, nvml: Any = None) -> GpuReader | None:
        """A reader for the GPUs in ``visible`` (``CUDA_VISIBLE_DEVICES``: indices or UUIDs).

        ``visible`` unset means every GPU of the host; set but empty means none.
        None when there is no GPU to read (no NVML library, no driver, no device).
        """
        visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
        if visible is not None and not visible.strip():
            return None
        try:
            if nvml is None:
                nvml = importlib.import_module("pynvml")
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            every = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # ImportError, NVMLError (no library, no driver)
            log.info("no GPU telemetry (%s); sampling the host instead", exc)
            return None
        handles = every if visible is None else _select(nvml, every, visible.split(","))
        return cls(nvml, handles) if handles else None

    def read(self, now: float) -> list[Sample]:
        """One sample per GPU."""
        return [
            Sample(now, f"gpu:{uuid}", self._values(handle), self._info(index, handle))
            for index, (handle, uuid) in enumerate(zip(self.handles, self.uuids, strict=True))
        ]

    def _values(self, handle: Any) -> dict[str, float]:
        nvml = self.nvml
        values: dict[str, float] = {}

        def put(name: str, read: Callable[[], float]) -> None:
            value = _try(read)  # None: NVMLError_NotSupported and friends, the GPU does not say
            if value is not None:
                values[name] = float(value)

        rates = _try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        if rates is not None:
            values["gpu_utilization_percent"] = float(rates.gpu)
            values["gpu_memory_utilization_percent"] = float(rates.memory)
        memory = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if memory is not None:
            values["gpu_memory_used_bytes"] = float(memory.used)
            values["gpu_memory_total_bytes"] = float(memory.total)
            if memory.total:
                values["gpu_memory_used_percent"] = 100.0 * memory.used / memory.total
        put("gpu_temperature_celsius", lambda: nvml.nvmlDeviceGetTemperature(handle, 0))
        put("gpu_power_watts", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000)
        put("gpu_power_limit_watts", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000)
        put("gpu_sm_clock_mhz", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        put(
            "gpu_pcie_rx_bytes_per_second",
            lambda: 1024 * nvml.nvmlDeviceGetPcieThroughput(handle, nvml.NVML_PCIE_UTIL_RX_BYTES),
        )
        put(
            "gpu_pcie_tx_bytes_per_second",
            lambda: 1024 * nvml.nvmlDeviceGetPcieThroughput(handle, nvml.NVML_PCIE_UTIL_TX_BYTES),
        )
        for kind, name in ((0, "corrected"), (1, "uncorrected")):  # NVML_MEMORY_ERROR_TYPE_*
            put(f"gpu_ecc_{name}_errors_total", partial(_ecc_errors, nvml, handle, kind))
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        if reasons is not None:
            put("gpu_throttle_reasons", lambda: reasons(handle))
        put("gpu_processes", lambda: len(self._pids(handle)))
        return values

    def recording(self) -> list[dict[str, Any]]:
        """The raw NVML answers for each GPU, in the tests' fake's shape (None: unsupported)."""
        nvml = self.nvml
        gpus = []
        for handle, uuid, name in zip(self.handles, self.uuids, self.names, strict=True):
            rates = _try(partial(nvml.nvmlDeviceGetUtilizationRates, handle))
            memory = _try(partial(nvml.nvmlDeviceGetMemoryInfo, handle))
            ecc = [_try(partial(_ecc_errors, nvml, handle, kind)) for kind in (0, 1)]
            pcie = [
                _try(partial(nvml.nvmlDeviceGetPcieThroughput, handle, counter))
                for counter in (nvml.NVML_PCIE_UTIL_RX_BYTES, nvml.NVML_PCIE_UTIL_TX_BYTES)
            ]
            values = self._values(handle)
            gpus.append(
                {
                    "uuid": uuid,
                    "name": name,
                    "utilization": rates and {"gpu": rates.gpu, "memory": rates.memory},
                    "memory": memory and {"used": memory.used, "total": memory.total},
                    "temperature": values.get("gpu_temperature_celsius"),
                    "power_mw": _milli(values.get("gpu_power_watts")),
                    "power_limit_mw": _milli(values.get("gpu_power_limit_watts")),
                    "sm_clock_mhz": values.get("gpu_sm_clock_mhz"),
                    "pcie_rx_kbps": pcie[0],
                    "pcie_tx_kbps": pcie[1],
                    "ecc": None if None in ecc else {"corrected": ecc[0], "uncorrected": ecc[1]},
                    "throttle_reasons": values.get("gpu_throttle_reasons"),
                    "pids": _try(partial(self._pids, handle)),
                }
            )
        return gpus

    def _info(self, index: int, handle: Any) -> dict[str, str]:
        pids = _try(lambda: self._pids(handle)) or []
        info = {"gpu": self.uuids[index], "model": self.names[index]}
        if pids:
            info["pids"] = ",".join(str(pid) for pid in pids)
        return info

    def _pids(self, handle: Any) -> list[int]:
        running = self.nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        return sorted({int(p.pid) for p in running})


class HostReader:
    """Reads the host through psutil: CPU, memory, network and disk, and this process tree."""

    def __init__(self, source: str, root_pid: int | None = None) -> None:
        import psutil

        self.psutil = psutil
        self.source = source
        self.root = psutil.Process(root_pid or os.getpid())
        self._last: tuple[float, dict[str, float]] | None = None
        psutil.cpu_percent(None)  # the first call only sets the reference point
        self._processes: dict[int, Any] = {}

    def read(self, now: float) -> list[Sample]:
        """One sample of the host and of the process tree this sampler watches."""
        ps = self.psutil
        memory = ps.virtual_memory()
        values = {
            "host_cpu_percent": float(ps.cpu_percent(None)),
            "host_memory_used_bytes": float(memory.total - memory.available),
            "host_memory_total_bytes": float(memory.total),
            "host_memory_used_percent": float(memory.percent),
        }
        values.update(self._rates(now))
        values.update(self._tree())
        return [Sample(now, self.source, values, {"host": socket.gethostname()})]

    def _rates(self, now: float) -> dict[str, float]:
        counters: dict[str, float] = {}
        net = self.psutil.net_io_counters()
        if net is not None:
            counters["host_network_rx"] = float(net.bytes_recv)
            counters["host_network_tx"] = float(net.bytes_sent)
        disk = _try(self.psutil.disk_io_counters)
        if disk is not None:
            counters["host_disk_read"] = float(disk.read_bytes)
            counters["host_disk_write"] = float(disk.write_bytes)
        last, self._last = self._last, (now, counters)
        if last is None or now <= last[0]:
            return {}
        seconds = now - last[0]
        return {
            f"{name}_bytes_per_second": max(0.0, (value - last[1][name]) / seconds)
            for name, value in counters.items()
            if name in last[1]
        }

    def _tree(self) -> dict[str, float]:
        ps = self.psutil
        try:
            members = [self.root, *self.root.children(recursive=True)]
        except ps.Error:
            return {}
        cpu = rss = 0.0
        alive: dict[int, Any] = {}
        for member in members:
            known = self._processes.get(member.pid, member)  # cpu_percent needs the same object
            try:
                cpu += known.cpu_percent(None)
                rss += known.memory_info().rss
            except ps.Error:
                continue
            alive[member.pid] = known
        self._processes = alive
        return {"process_cpu_percent": cpu, "process_memory_bytes": rss}


class Pusher:
    """Batches samples to the control plane; keeps at most ``capacity`` while it is away.

    ``post(batch)`` sends one batch and raises on failure; the default posts
    JSON with the resource's token. ``dropped`` counts samples lost to a full
    buffer (the oldest go first).
    """

    def __init__(
        self,
        post: Callable[[dict[str, Any]], None],
        resource: str,
        process: str,
        capacity: int = DEFAULT_CAPACITY,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.post = post
        self.resource = resource
        self.process = process
        self.capacity = capacity
        self.batch_size = batch_size
        self.buffer: deque[Sample] = deque()
        self.dropped = 0
        self.lock = threading.Lock()

    def add(self, samples: Iterable[Sample]) -> None:
        """Queue samples, dropping the oldest beyond ``capacity``."""
        with self.lock:
            self.buffer.extend(samples)
            overflow = len(self.buffer) - self.capacity
            for _ in range(max(0, overflow)):
                self.buffer.popleft()
            self.dropped += max(0, overflow)

    def flush(self) -> bool:
        """Send everything queued; False (keeping what was not sent) on the first failure."""
        while True:
            with self.lock:
                batch = [self.buffer[i] for i in range(min(self.batch_size, len(self.buffer)))]
            if not batch:
                return True
            body = {
                "resource": self.resource,
                "process": self.process,
                "dropped": self.dropped,
                "chunks": columns(batch),
            }
            try:
                self.post(body)
            except Exception as exc:
                log.info("telemetry push failed (%s); %d samples wait", exc, len(self.buffer))
                return False
            sent = {id(sample) for sample in batch}
            with self.lock:  # what was sent is at the front, unless a full buffer dropped it
                while self.buffer and id(self.buffer[0]) in sent:
                    self.buffer.popleft()


def columns(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Samples as the API's ``chunks``: per source, the times and a column per metric
    (``None`` where a sample lacks it) - each metric name sent once, not once per sample."""
    by_source: dict[str, list[Sample]] = {}
    for sample in samples:
        by_source.setdefault(sample.source, []).append(sample)
    chunks = []
    for source, group in by_source.items():
        names = sorted({name for sample in group for name in sample.values})
        chunk: dict[str, Any] = {
            "source": source,
            "times": [sample.time for sample in group],
            "values": {name: [sample.values.get(name) for sample in group] for name in names},
        }
        if group[-1].info:
            chunk["info"] = group[-1].info
        chunks.append(chunk)
    return chunks


class Sampler(threading.Thread):
    """Reads every ``interval`` seconds and pushes every ``push_seconds`` (a daemon thread).

    After a failed push the next one waits twice as long (up to a minute);
    reading goes on meanwhile.
    """

    def __init__(
        self,
        readers: Sequence[Reader],
        pusher: Pusher,
        interval: float = DEFAULT_INTERVAL,
        push_seconds: float = DEFAULT_PUSH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="titan-telemetry", daemon=True)
        self.readers = list(readers)
        self.pusher = pusher
        self.interval = interval
        self.push_seconds = push_seconds
        self.clock = clock
        self.stopping = threading.Event()
        self.backoff = push_seconds

    def sample_once(self) -> list[Sample]:
        """Ask every reader once; a reader that fails is skipped this time."""
        now = self.clock()
        samples: list[Sample] = []
        for reader in self.readers:
            try:
                samples.extend(reader.read(now))
            except Exception:
                log.debug("telemetry reader %r failed", reader, exc_info=True)
        return samples

    def run(self) -> None:
        next_push = time.monotonic() + min(self.push_seconds, 1.0)  # first push soon
        while not self.stopping.is_set():
            self.pusher.add(self.sample_once())
            if time.monotonic() >= next_push:
                if self.pusher.flush():
                    self.backoff = self.push_seconds
                else:
                    self.backoff = min(self.backoff * 2, MAX_BACKOFF)
                next_push = time.monotonic() + self.backoff
            self.stopping.wait(self.interval)
        self.pusher.flush()

    def stop(self) -> None:
        """Stop after one last push."""
        self.stopping.set()


def http_post(url: str, token: str, timeout: float = 10.0) -> Callable[[dict[str, Any]], None]:
    """A ``post`` for :class:`Pusher` that sends to ``{url}/api/v1/telemetry``."""
    import httpx

    client = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    )

    def post(body: dict[str, Any]) -> None:
        client.post("/api/v1/telemetry", json=body).raise_for_status()

    return post


def start_from_environment(
    process: str, extra: Sequence[Reader] = (), root_pid: int | None = None
) -> Sampler | None:
    """Start the sampler of this process from ``TITAN_*`` variables; None when not under Titan.

    ``TITAN_TELEMETRY=off`` turns it off; ``TITAN_TELEMETRY_INTERVAL`` and
    ``TITAN_TELEMETRY_PUSH_SECONDS`` set the periods.
    """
    url, token = os.environ.get("TITAN_URL"), os.environ.get("TITAN_TOKEN")
    if not url or not token or os.environ.get("TITAN_TELEMETRY", "on") == "off":
        return None
    try:
        interval = float(os.environ.get("TITAN_TELEMETRY_INTERVAL", DEFAULT_INTERVAL))
        push = float(os.environ.get("TITAN_TELEMETRY_PUSH_SECONDS", DEFAULT_PUSH_SECONDS))
        gpu: Reader | None = GpuReader.open()
        readers: list[Reader] = [gpu or HostReader(f"host:{process}", root_pid), *extra]
        pusher = Pusher(http_post(url, token), os.environ.get("TITAN_RESOURCE", ""), process)
        sampler = Sampler(readers, pusher, interval, push)
    except Exception:
        log.warning("telemetry could not start; the process runs without it", exc_info=True)
        return None
    sampler.start()
    return sampler


def report(source: str, values: dict[str, float], info: dict[str, str] | None = None) -> bool:
    """Send one sample now (e.g. a training result); False when not under Titan or it failed."""
    url, token = os.environ.get("TITAN_URL"), os.environ.get("TITAN_TOKEN")
    if not url or not token:
        return False
    pusher = Pusher(http_post(url, token), os.environ.get("TITAN_RESOURCE", ""), source)
    pusher.add([Sample(time.time(), source, values, info or {})])
    return pusher.flush()


def _ecc_errors(nvml: Any, handle: Any, kind: int) -> float:
    return float(nvml.nvmlDeviceGetTotalEccErrors(handle, kind, 1))  # 1: aggregate counter


def _select(nvml: Any, handles: list[Any], wanted: list[str]) -> list[Any]:
    chosen = []
    for item in (w.strip() for w in wanted):
        if item.isdigit() and int(item) < len(handles):
            chosen.append(handles[int(item)])
        else:
            chosen += [h for h in handles if _text(nvml.nvmlDeviceGetUUID(h)) == item]
    return chosen


def _milli(watts: float | None) -> int | None:
    return None if watts is None else round(watts * 1000)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _try(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m workers.telemetry``: print what this machine's sampler reads, as JSON lines.

    ``--once`` reads once; ``--seconds N`` reads every ``--interval`` for N
    seconds; ``--record FILE`` writes the raw NVML readings in the shape the
    tests' NVML fake replays (``tests/data/nvml_*.json``).
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m workers.telemetry")
    parser.add_argument("--once", action="store_true", help="read once and exit")
    parser.add_argument("--seconds", type=float, default=0, help="read for this long")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL)
    parser.add_argument("--record", default=None, help="write NVML readings to this file")
    args = parser.parse_args(argv)
    gpu = GpuReader.open()
    reader: Reader = gpu or HostReader("host:" + socket.gethostname())
    if args.record:
        if gpu is None:
            print("no GPU readable through NVML here: nothing to record", file=sys.stderr)
            return 1
        Path(args.record).write_text(json.dumps({"gpus": gpu.recording()}, indent=1) + "\n")
        return 0
    deadline = time.monotonic() + (0 if args.once else args.seconds)
    while True:
        for sample in reader.read(time.time()):
            print(json.dumps(sample.to_json()), flush=True)
        if time.monotonic() + args.interval > deadline:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
