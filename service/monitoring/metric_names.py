"""The metrics Titan's samplers report (``workers/telemetry.py``, the Dask and Ray plugins).

Any other valid name may be sent too (a training script's ``training_rmse``);
such names are known once stored. ``GET /api/v1/telemetry/metrics`` lists both.
"""

from __future__ import annotations

STANDARD_METRICS: dict[str, str] = {
    "gpu_utilization_percent": "percent of time a kernel ran on the GPU",
    "gpu_memory_utilization_percent": "percent of time GPU memory was read or written",
    "gpu_memory_used_bytes": "GPU memory in use",
    "gpu_memory_total_bytes": "GPU memory in all",
    "gpu_memory_used_percent": "GPU memory in use, percent of all",
    "gpu_temperature_celsius": "GPU temperature",
    "gpu_power_watts": "GPU power draw",
    "gpu_power_limit_watts": "GPU power limit",
    "gpu_sm_clock_mhz": "GPU SM clock",
    "gpu_pcie_rx_bytes_per_second": "PCIe bytes received by the GPU",
    "gpu_pcie_tx_bytes_per_second": "PCIe bytes sent by the GPU",
    "gpu_ecc_corrected_errors_total": "corrected GPU memory errors",
    "gpu_ecc_uncorrected_errors_total": "uncorrected GPU memory errors",
    "gpu_throttle_reasons": "NVML clock throttle reasons (bit mask)",
    "gpu_processes": "processes using the GPU",
    "host_cpu_percent": "CPU use of the host, percent",
    "host_memory_used_bytes": "host memory in use",
    "host_memory_total_bytes": "host memory in all",
    "host_memory_used_percent": "host memory in use, percent of all",
    "host_network_rx_bytes_per_second": "network bytes received by the host",
    "host_network_tx_bytes_per_second": "network bytes sent by the host",
    "host_disk_read_bytes_per_second": "disk bytes read by the host",
    "host_disk_write_bytes_per_second": "disk bytes written by the host",
    "process_cpu_percent": "CPU use of the resource's process and its children, percent",
    "process_memory_bytes": "resident memory of the resource's process and its children",
    "dask_tasks_processing": "tasks the Dask scheduler has running",
    "dask_tasks_completed_total": "tasks the Dask scheduler has finished",
    "dask_workers": "workers connected to the Dask scheduler",
    "ray_tasks_running": "Ray tasks running",
    "ray_actors_alive": "Ray actors alive",
    "ray_jobs_running": "Ray jobs running",
    "ray_nodes_alive": "Ray nodes alive",
}
