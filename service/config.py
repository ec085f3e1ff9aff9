"""Settings of the control plane, read from ``TITAN_*`` environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.client.defaults import data_dir as default_data_dir
from service.core.capacity.limits import QuotaLimits
from service.monitoring.alert_rules import DEFAULT_ALERT_RULES, AlertRuleSetting


class InstanceType(BaseModel):
    """One entry of the operator's size catalog."""

    cpu: float = Field(gt=0, description="CPU cores")
    memory: str = Field(description="memory, e.g. '4GiB'")
    gpu: int = Field(default=0, ge=0, description="whole GPUs")


DEFAULT_INSTANCE_TYPES: dict[str, InstanceType] = {
    "cpu-small": InstanceType(cpu=1, memory="2GiB"),
    "cpu-medium": InstanceType(cpu=2, memory="8GiB"),
    "cpu-large": InstanceType(cpu=4, memory="16GiB"),
    "gpu-1": InstanceType(cpu=4, memory="32GiB", gpu=1),
    "gpu-2": InstanceType(cpu=8, memory="64GiB", gpu=2),
}


class Settings(BaseSettings):
    """Everything an operator can set; each field is ``TITAN_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="TITAN_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="where the SQLite store, the admin token and process logs live",
    )
    users_dir: Path | None = Field(
        default=None,
        description="where user processes' own folders live (run folders, homes, job "
        "outputs, shared folders), outside the private data_dir; default "
        "<data_dir>-users. With TITAN_OS_ACCOUNTS it must be reachable by those accounts",
    )
    os_accounts: dict[str, str] = Field(
        default_factory=dict,
        description="local and slurm backends: the OS account each Titan user's (or group's) "
        "processes run as (JSON object; '*' for everyone else, '{name}' is replaced by the "
        "Titan name). Without an entry only admins' resources run (as the server's own account)",
    )
    pass_environment: list[str] = Field(
        default_factory=list,
        description="names of the server's environment variables passed on to every process "
        "it starts, beyond the few always passed (PATH, LANG, TZ...) (JSON list)",
    )
    user_cpu_shares: int = Field(
        default=256,
        ge=2,
        le=262_144,
        description="CPU weight of all user processes together against the control plane's "
        "1024 (local backend: a cgroup where the node has one, else a lower priority)",
    )
    keep_deleted_files: bool = Field(
        default=False,
        description="keep a deleted resource's logs, run folders and workspace home on disk "
        "(local backend); by default they go with it",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default: SQLite in WAL mode under data_dir. "
        "PostgreSQL: postgresql+psycopg://user:password@host/db",
    )
    host: str = Field(default="127.0.0.1", description="address the API server listens on")
    port: int = Field(default=8686, ge=0, le=65535, description="port of the API server (0: any)")
    public_url: str | None = Field(
        default=None,
        description="URL processes use to reach the API (TITAN_URL); default http://host:port",
    )
    backend: str = Field(
        default="local", description="where processes run: 'local', 'docker' or 'slurm'"
    )
    slurm_partition: str | None = Field(
        default=None, description="Slurm partition of jobs whose recipe names none (slurm backend)"
    )
    slurm_account: str | None = Field(
        default=None, description="Slurm account charged where the recipe names none"
    )
    slurm_qos: str | None = Field(default=None, description="Slurm QOS where the recipe names none")
    slurm_time_limit: str | None = Field(
        default=None, description="Slurm time limit of each process where the recipe sets none"
    )
    slurm_python: str | None = Field(
        default=None,
        description="the Python with Titan installed, at the same path on every Slurm node "
        "(shared filesystem); default: the control plane's own",
    )
    slurm_job_prefix: str = Field(
        default="titan",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$",
        description="prefix of the names of Titan's Slurm jobs (how a restart finds them)",
    )
    slurm_queue_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how long a start waits for Slurm to run a job before reporting it "
        "queued, with Slurm's reason",
    )
    docker_image: str = Field(
        default="titan/cpu:latest", description="image of processes whose recipe names none"
    )
    docker_gpu_image: str = Field(
        default="titan/cuda:latest", description="image of GPU processes whose recipe names none"
    )
    docker_prefix: str = Field(
        default="titan", description="prefix of the containers, networks and volumes Titan makes"
    )
    container_host: str | None = Field(
        default=None,
        description="another address the API listens on, for containers to reach it "
        "(docker backend; default: the engine's default bridge gateway, found at start)",
    )
    publish_host: str = Field(
        default="127.0.0.1", description="address container ports are published on"
    )
    max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="largest request body accepted (bytes)"
    )
    instance_types: dict[str, InstanceType] = Field(
        default_factory=lambda: dict(DEFAULT_INSTANCE_TYPES),
        description="size catalog recipes name with instance_type (JSON object)",
    )
    saturn_instance_types: dict[str, str] = Field(
        default_factory=dict,
        description="`titan import saturn`: the Titan instance type each Saturn Cloud size "
        'becomes (JSON object, e.g. {"large": "cpu-large", "g4dnxlarge": "gpu-1"}); '
        "a Saturn size not in it is refused",
    )
    default_quota: QuotaLimits = Field(
        default_factory=QuotaLimits,
        description="limits of every user and group without their own (JSON: gpus, cpus, "
        "memory, resources; unset: unlimited)",
    )
    cpu_overcommit: float = Field(
        default=4.0, gt=0, description="CPUs a node may promise per physical CPU"
    )
    memory_overcommit: float = Field(
        default=1.0, gt=0, description="memory a node may promise per byte it has"
    )
    reconcile_parallelism: int = Field(
        default=4, ge=1, description="resources reconciled at the same time"
    )
    resync_seconds: float = Field(
        default=2.0, gt=0, description="how often every resource is checked against reality"
    )
    token_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a checked token is remembered (0: never)"
    )
    console_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 90,
        description="how long a web console sign-in lasts (its session token then expires)",
    )
    secret_keys: list[str] = Field(
        default_factory=list,
        description="Fernet keys secrets are encrypted with (JSON list; the first encrypts, "
        "all decrypt); default: one made in <data_dir>/secret.key",
    )
    dask_tls: bool = Field(
        default=True,
        description="Dask schedulers accept only TLS connections with their cluster's "
        "certificate (its owner fetches it from the API)",
    )
    allow_any_image: bool = Field(
        default=False,
        description="let recipes name any image, not only registered ones (docker backend)",
    )
    auth_failures_per_minute: int = Field(
        default=30, ge=1, description="failed authentications a client may make per minute"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description='addresses or networks (JSON list, e.g. ["10.0.0.5", "10.1.0.0/16"]) '
        "of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers are believed; "
        "empty: none, every client is its connection's peer address",
    )
    adaptive_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often adaptive clusters ask their scheduler"
    )
    adaptive_wait_count: int = Field(
        default=3, ge=1, description="checks in a row a worker must be idle before it is retired"
    )
    backoff_base_seconds: float = Field(
        default=1.0, gt=0, description="first retry delay after a failed reconcile"
    )
    backoff_max_seconds: float = Field(default=300.0, gt=0, description="longest retry delay")
    start_timeout_seconds: float = Field(
        default=120.0, gt=0, description="how long a process may take to become ready"
    )
    stop_timeout_seconds: float = Field(
        default=10.0, gt=0, description="grace period between SIGTERM and SIGKILL"
    )

    schedule_tick_seconds: float = Field(
        default=1.0,
        gt=0,
        description="how often jobs' schedules, retries and timeouts are checked",
    )
    job_runs_kept: int = Field(
        default=100,
        ge=1,
        description="runs of each job kept in its history (the oldest ended ones go first)",
    )
    schedule_time_scale: float = Field(
        default=1.0,
        gt=0,
        description="tests only: how many times faster than real time schedules run "
        "(60: a schedule's minute lasts one second)",
    )

    telemetry_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often each process samples its GPUs or host"
    )
    telemetry_push_seconds: float = Field(
        default=5.0, gt=0, description="how often each process sends its samples"
    )
    telemetry_raw_retention_seconds: float = Field(
        default=24 * 3600, gt=0, description="how long raw telemetry samples are kept"
    )
    telemetry_rollup_retention_seconds: float = Field(
        default=30 * 24 * 3600, gt=0, description="how long 1-minute rollups are kept"
    )
    deployment_metrics_seconds: float = Field(
        default=10.0,
        gt=0,
        description="how often each deployment's requests, errors and latency through the "
        "front door are stored as a sample",
    )
    telemetry_compact_seconds: float = Field(
        default=60.0, gt=0, description="how often rollups are made and old telemetry removed"
    )
    telemetry_silence_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a running resource silent this long is not judged idle (its sampler is away)",
    )
    alert_rules: list[AlertRuleSetting] = Field(
        default_factory=lambda: list(DEFAULT_ALERT_RULES),
        description="alert rules (JSON list of {name, metric, comparison, threshold, for_seconds})",
    )
    alert_interval_seconds: float = Field(
        default=5.0, gt=0, description="how often silence alerts are checked"
    )
    alert_webhook_url: str | None = Field(
        default=None, description="URL each firing and resolved alert is POSTed to (JSON)"
    )
    idle_gpu_utilisation_percent: float = Field(
        default=2.0, ge=0, le=100, description="GPU utilisation at or below which a GPU is idle"
    )
    idle_check_seconds: float = Field(
        default=5.0, gt=0, description="how often resources with auto_shutoff are checked"
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for index, entry in enumerate(value):
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies[{index}]: {entry!r} is not an IP address or network "
                    "(e.g. 10.0.0.5 or 10.1.0.0/16); name your proxies, never every client"
                ) from None
        return [entry.strip() for entry in value]

    @model_validator(mode="after")
    def _saturn_sizes_in_catalog(self) -> Settings:
        unknown = {
            k: v for k, v in self.saturn_instance_types.items() if v not in self.instance_types
        }
        if unknown:
            wrong = ", ".join(f"{k!r}: {v!r}" for k, v in sorted(unknown.items()))
            known = ", ".join(sorted(self.instance_types)) or "none"
            raise ValueError(
                f"saturn_instance_types: {wrong} names no instance type of the catalog "
                f"(TITAN_INSTANCE_TYPES: {known})"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The store URL, defaulting to ``sqlite:///<data_dir>/titan.db``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'titan.db'}"

    @property
    def api_url(self) -> str:
        """The URL handed to processes as ``TITAN_URL``."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def container_api_url(self) -> str:
        """The URL handed to processes in containers as ``TITAN_URL``."""
        if self.container_host:
            return f"http://{self.container_host}:{self.port}"
        return self.api_url

    @property
    def user_root(self) -> Path:
        """Where user processes' own folders live, outside the private ``data_dir``."""
        return self.users_dir or self.data_dir.with_name(self.data_dir.name + "-users")

    @property
    def outputs_dir(self) -> Path:
        """Where jobs write results: ``<outputs_dir>/<owner>/job/<name>`` (TITAN_OUTPUT_DIR)."""
        return self.user_root / "outputs"

    @property
    def folders_dir(self) -> Path:
        """Where shared folders live: ``<folders_dir>/<owner>/<name>``."""
        return self.user_root / "folders"

    @property
    def admin_token_file(self) -> Path:
        """The 0600 file holding the first admin token."""
        return self.data_dir / "admin-token"
