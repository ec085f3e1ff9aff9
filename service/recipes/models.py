"""Recipe models: what a user may write, checked strictly.

Unknown keys are errors everywhere (a typo must never be silently ignored).
``parse_recipe`` turns a JSON value into a :data:`Recipe` or raises
:class:`RecipeInvalid` listing every problem with its JSON path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.json_values import quoted, text_problem
from service.recipes.problems import problem, recipe_problems
from service.recipes.units import check_cron, parse_duration, parse_memory

SCHEMA_VERSION = 1
RESOURCE_TYPES = ("workspace", "cluster", "job", "deployment")
RESERVED_TYPES: tuple[str, ...] = ()

# Anchored with \Z: "$" would also match before a final newline, letting "name\n" through.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}\Z")
# Set by Titan for every process; a recipe may not override them.
RESERVED_ENV = ("TITAN_URL", "TITAN_TOKEN", "TITAN_RESOURCE", "DASK_SCHEDULER_ADDRESS")
# Control characters (C0 but tab and newline, DEL, C1) and lone surrogates: what no
# command, variable, path or description Titan hands on or prints may hold.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_OR_SPACING = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_MEMORY = 64 * 1024**4  # 64 TiB: anything above is a typo
MIN_MEMORY = 64 * 1024**2


def _check_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS label: 1-63 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _check_text(value: str) -> str:
    """``value`` if it holds no control character but tab and newline."""
    _refuse_control(value, _CONTROL, "only tab and newline may appear here")
    return value


def _check_line(value: str) -> str:
    """``value`` if it holds no control character at all (not even tab or newline)."""
    _refuse_control(value, _CONTROL_OR_SPACING, "no control character may appear here")
    return value


def _refuse_control(value: str, pattern: re.Pattern[str], allowed: str) -> None:
    unstorable = text_problem(value)  # NUL or a lone surrogate: said as everywhere else
    if unstorable is not None:
        raise ValueError(unstorable)
    bad = pattern.search(value)
    if bad is None:
        return
    char = f"U+{ord(bad.group()):04X}"
    hint = " (use Unix line endings: \\n, not \\r\\n)" if bad.group() == "\r" else ""
    raise ValueError(
        f"holds the control character {char} at position {bad.start()}; {allowed}{hint}"
    )


def _check_command(value: str | list[str]) -> str | list[str]:
    """``value`` if it is a non-empty command (shell string or argv) of printable text."""
    if not value or (isinstance(value, list) and not all(value)):
        raise ValueError("must be a non-empty command")
    if isinstance(value, str):
        return _check_text(value)
    for index, item in enumerate(value):
        try:
            _check_text(item)
        except ValueError as exc:
            raise ValueError(f"item {index} {exc}") from None
    return value


def _check_memory(value: str) -> str:
    size = parse_memory(value)
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise ValueError("must be between 64MiB and 64TiB")
    return value


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


def _check_cron(value: str) -> str:
    return check_cron(value)


def _check_timezone(value: str) -> str:
    if value in ("", "localtime") or value.startswith("/") or ".." in value:
        raise ValueError(f"{quoted(value)} is not an IANA time zone; write e.g. 'Europe/Berlin'")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{quoted(value)} is not an IANA time zone; write e.g. 'Europe/Berlin' or 'UTC'"
        ) from None
    return value


Label = Annotated[str, AfterValidator(_check_label)]
Cron = Annotated[str, StringConstraints(max_length=200), AfterValidator(_check_cron)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]
Memory = Annotated[str, AfterValidator(_check_memory)]
Duration = Annotated[str, AfterValidator(_check_duration)]
EnvValue = Annotated[str, StringConstraints(max_length=32768), AfterValidator(_check_text)]


class StrictModel(BaseModel):
    """A model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid")


class Resources(StrictModel):
    """An explicit size for one process."""

    cpu: float = Field(default=1, gt=0, le=1024, description="CPU cores")
    memory: Memory = Field(default="2GiB", description="memory, e.g. '4GiB'")
    gpu: int = Field(default=0, ge=0, le=64, description="whole GPUs")


class ClusterWorker(StrictModel):
    """How each worker of a cluster runs (a Dask worker, or a Ray worker node)."""

    nthreads: int = Field(
        default=1, ge=1, le=1024, description="threads per Dask worker; CPUs per Ray worker node"
    )
    memory: Memory | None = Field(default=None, description="memory limit per worker")
    gpu: float = Field(
        default=0,
        ge=0,
        le=64,
        description="GPUs per worker: whole GPUs, or (Dask only) a share of one GPU "
        "below 1 such as 0.5 or 0.25 (shared GPUs have no memory isolation)",
    )
    object_store_memory: Memory | None = Field(
        default=None, description="Ray only: the object store's size on each worker node"
    )

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError(
                "give whole GPUs (1, 2, ...) or a share of one GPU below 1 (e.g. 0.5, 0.25)"
            )
        if 0 < value < 1 and round(value * 100) != value * 100:
            raise ValueError("a GPU share has at most two decimals (e.g. 0.5, 0.25)")
        return int(value) if value >= 1 or value == 0 else value


class ClusterScheduler(StrictModel):
    """How the cluster's central process runs: the Dask scheduler or the Ray head."""

    memory: Memory | None = Field(default=None, description="memory for the scheduler or head")


class Adaptive(StrictModel):
    """Bounds for adaptive scaling of the worker count."""

    minimum: int = Field(default=0, ge=0, le=1000)
    maximum: int = Field(default=1, ge=1, le=1000)

    def clamp(self, count: int) -> int:
        """``count`` kept within the bounds."""
        return min(max(count, self.minimum), self.maximum)

    @model_validator(mode="after")
    def _ordered(self) -> Adaptive:
        if self.maximum < self.minimum:
            raise ValueError(f"maximum ({self.maximum}) must be >= minimum ({self.minimum})")
        return self


Engine = Literal["dask", "ray"]


class ClusterFields(StrictModel):
    """The fields of a cluster, shared by ``cluster`` specs and attached clusters."""

    engine: Engine = Field(
        default="dask",
        description="what the cluster runs: 'dask' (scheduler + workers) "
        "or 'ray' (head + worker nodes; needs pip install 'titan[ray]')",
    )
    n_workers: int = Field(default=1, ge=0, le=1000, description="number of workers")
    worker: ClusterWorker = Field(default_factory=ClusterWorker)
    scheduler: ClusterScheduler = Field(default_factory=ClusterScheduler)
    adaptive: Adaptive | None = Field(default=None, description="scale between bounds")

    @model_validator(mode="after")
    def _engine_fields(self) -> ClusterFields:
        if self.engine == "ray" and 0 < self.worker.gpu < 1:
            raise ValueError(
                "worker.gpu: a Ray worker node takes whole GPUs (1, 2, ...); share a GPU "
                "between tasks with Ray's own num_gpus=0.5 instead"
            )
        if self.engine != "ray" and self.worker.object_store_memory is not None:
            raise ValueError("worker.object_store_memory is for Ray clusters only (engine: 'ray')")
        return self


class AttachedCluster(ClusterFields):
    """A cluster attached to a workspace or a job (Dask or Ray)."""


class DaskClusterSpec(ClusterFields):
    """A Dask cluster attached to a workspace or a job (``dask_cluster``)."""

    engine: Literal["dask"] = Field(default="dask", description="always 'dask' here")


_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}\Z")


class SecretRef(StrictModel):
    """A secret handed to the resource's processes as a variable or a file (never both)."""

    name: Label = Field(description="the secret's name")
    owner: Label | None = Field(default=None, description="its owner; default: the resource's")
    env: str | None = Field(default=None, description="environment variable to put it in")
    file: str | None = Field(
        default=None, description="file name in $TITAN_SECRETS_DIR to write it to"
    )

    @field_validator("env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None:
            _check_env_name(value)
        return value

    @field_validator("file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        if value is not None and not _FILE_NAME.match(value):
            raise ValueError("must be a plain file name (letters, digits, '.', '_', '-')")
        if value is not None and value.startswith("dask-"):
            raise ValueError("names starting with 'dask-' are reserved for the cluster's TLS files")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env (a variable) or file (a file name)")
        return self


_MOUNT_PATH = re.compile(r"^/[A-Za-z0-9._/-]{0,4095}\Z")
_SYSTEM_PATHS = (
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
)


class FolderRef(StrictModel):
    """A shared folder mounted into every process of the resource."""

    name: Label = Field(description="the folder's name")
    owner: Label | None = Field(default=None, description="its owner; default: the resource's")
    path: str = Field(description="where it appears in containers, e.g. /data")
    read_only: bool = Field(default=False, description="mount it read-only (docker backend)")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        parts = value.split("/")
        if not _MOUNT_PATH.match(value) or ".." in parts or value.rstrip("/") in _SYSTEM_PATHS:
            raise ValueError(
                "must be an absolute path outside the system folders, e.g. /data or /shared/models"
            )
        return value


def _check_env_name(key: str) -> None:
    if not _ENV_NAME.match(key):
        raise ValueError(f"{quoted(key)} is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
    if key in RESERVED_ENV or key.startswith("TITAN_"):
        raise ValueError(f"{quoted(key)} is reserved for Titan; choose another name")


_SLURM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
# Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
_SLURM_TIME = re.compile(
    r"^(\d{1,6}|\d{1,6}:\d{2}|\d{1,3}:\d{2}:\d{2}|\d{1,3}-\d{1,2}(:\d{2}){0,2})\Z"
)


class SlurmOptions(StrictModel):
    """Where and how long a resource's Slurm jobs run (slurm backend; the operator's
    TITAN_SLURM_* settings fill in what is not given)."""

    partition: str | None = Field(default=None, description="Slurm partition (sbatch -p)")
    account: str | None = Field(default=None, description="Slurm account charged (sbatch -A)")
    qos: str | None = Field(default=None, description="Slurm quality of service (sbatch --qos)")
    time_limit: str | None = Field(
        default=None,
        description="Slurm time limit per process (sbatch -t): minutes, HH:MM:SS or D-HH:MM:SS",
    )

    @field_validator("partition", "account", "qos")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _SLURM_NAME.match(value):
            raise ValueError(
                "must be a Slurm name: letters, digits, '_', '.', '-' (at most 64), e.g. 'gpu'"
            )
        return value

    @field_validator("time_limit")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not _SLURM_TIME.match(value):
            raise ValueError("must be a Slurm time: minutes ('90'), '01:30:00' or '2-00:00:00'")
        return value

    def options(self) -> dict[str, str]:
        """The options given, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CommonSpec(StrictModel):
    """Fields every resource's spec has."""

    image: str | None = Field(default=None, description="container image (docker backend)")
    instance_type: str | None = Field(default=None, description="a size from the catalog")
    resources: Resources | None = Field(default=None, description="an explicit size")
    environment_variables: dict[str, EnvValue] = Field(default_factory=dict, max_length=256)
    start_script: str | None = Field(default=None, max_length=65536)
    working_directory: str | None = Field(default=None, max_length=4096)
    auto_shutoff: Duration = Field(default="never", description="idle time before stopping")
    secrets: list[SecretRef] = Field(
        default_factory=list, max_length=64, description="secrets handed to every process"
    )
    folders: list[FolderRef] = Field(
        default_factory=list, max_length=32, description="shared folders mounted into every process"
    )
    slurm: SlurmOptions | None = Field(
        default=None, description="partition, account, QOS and time limit (slurm backend)"
    )

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE.match(value):
            raise ValueError("must be an image reference such as 'titan/cpu:latest'")
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        catalog = (info.context or {}).get("instance_types")
        if value is not None and catalog is not None and value not in catalog:
            known = ", ".join(sorted(catalog)) or "none configured"
            raise ValueError(f"unknown instance type {quoted(value)}; choose one of: {known}")
        return value

    @field_validator("environment_variables")
    @classmethod
    def _environment(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            _check_env_name(key)
        return value

    @field_validator("start_script")
    @classmethod
    def _start_script(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value)

    @field_validator("working_directory")
    @classmethod
    def _working_directory(cls, value: str | None) -> str | None:
        return None if value is None else _check_line(value)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[SecretRef], info: ValidationInfo) -> list[SecretRef]:
        targets = [str(ref.env or ref.file) for ref in value]
        clashes = {t for t in targets if targets.count(t) > 1}
        clashes |= {t for t in targets if t in (info.data.get("environment_variables") or {})}
        if clashes:
            raise ValueError(
                f"{', '.join(map(repr, sorted(clashes)))} is given more than once "
                "(in secrets or environment_variables)"
            )
        return value

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: list[FolderRef]) -> list[FolderRef]:
        paths = [ref.path.rstrip("/") for ref in value]
        twice = sorted({p for p in paths if paths.count(p) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} is the path of more than one folder")
        return value

    @model_validator(mode="after")
    def _one_size(self) -> CommonSpec:
        if self.instance_type is not None and self.resources is not None:
            raise ValueError("give either instance_type or resources, not both")
        return self


class Attaching(StrictModel):
    """A workspace's or job's own cluster: ``cluster`` (any engine) or ``dask_cluster``."""

    cluster: AttachedCluster | None = Field(
        default=None,
        description='a Dask or Ray cluster started with it, e.g. {"engine": "ray", "n_workers": 2}',
    )
    dask_cluster: DaskClusterSpec | None = Field(
        default=None,
        description="a Dask cluster started with it (same as cluster with engine 'dask')",
    )

    @model_validator(mode="after")
    def _one_cluster(self) -> Attaching:
        if self.cluster is not None and self.dask_cluster is not None:
            raise ValueError("give either cluster or dask_cluster, not both")
        return self


class WorkspaceSpec(CommonSpec, Attaching):
    """A JupyterLab server, optionally with its own Dask or Ray cluster."""


class ClusterSpec(CommonSpec, ClusterFields):
    """A cluster: a Dask scheduler or Ray head, and ``n_workers`` workers."""


class JobSpec(CommonSpec, Attaching):
    """A command run to completion, optionally with its own Dask or Ray cluster; once
    when applied, or on a cron ``schedule``. Each run is recorded on its own (``titan
    runs``)."""

    command: str | list[str] = Field(description="shell command, or argv list")
    schedule: Cron | None = Field(
        default=None,
        description="5-field cron expression (minute hour day-of-month month day-of-week), "
        "e.g. '30 2 * * *' for 02:30 daily; with one, applying the job starts no run: "
        "its schedule does (and 'titan run' any time)",
    )
    timezone: TimeZone | None = Field(
        default=None,
        description="IANA time zone the schedule's times are in, e.g. 'Europe/Berlin' "
        "(default UTC); a time skipped by a DST change runs when the gap ends, a time "
        "repeated runs once",
    )
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] | None = Field(
        default=None,
        description="when a run is due while the previous one still runs: 'Forbid' (the "
        "default) skips it (a manual run is refused), 'Replace' stops the running one and "
        "starts it, 'Allow' starts it alongside (each run its own process, exit code, logs, "
        "outputs, timeout and retries; at most max_concurrent_runs at once)",
    )
    max_concurrent_runs: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="with concurrency_policy 'Allow': how many runs may go on at once "
        "(default 5); a run due beyond that is skipped (a manual one refused)",
    )
    starting_deadline: Duration | None = Field(
        default=None,
        description="after the control plane was away, the latest missed due time still "
        "runs if it is at most this old (default 1h); every other missed one is recorded, "
        "never run",
    )
    retries: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="times a failed, timed-out or lost run is retried (default 0)",
    )
    retry_backoff: Duration | None = Field(
        default=None,
        description="wait before the first retry (default 10s); doubled for each further "
        "one, at most 1h",
    )
    timeout: Duration | None = Field(
        default=None,
        description="a run going longer is stopped and recorded as timed out (default: never)",
    )
    suspend: bool | None = Field(
        default=None,
        description="true: the schedule starts no run ('titan run' still does)",
    )

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | list[str]) -> str | list[str]:
        return _check_command(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("schedule") is None:
            raise ValueError("give it with a schedule: it says where the schedule's times are")
        return value

    @field_validator("concurrency_policy")
    @classmethod
    def _concurrency_policy(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "Allow" and (info.data.get("cluster") or info.data.get("dask_cluster")):
            raise ValueError(
                "'Allow' (runs side by side) is not supported for a job with its own cluster "
                "(its runs would share it); use 'Forbid' or 'Replace', or drop the cluster"
            )
        return value

    @field_validator("max_concurrent_runs")
    @classmethod
    def _max_concurrent_runs(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("concurrency_policy") != "Allow":
            raise ValueError(
                "applies only with concurrency_policy 'Allow' (the other policies run one "
                "run at a time); set concurrency_policy 'Allow' or leave it out"
            )
        return value

    @field_validator("starting_deadline", "retry_backoff")
    @classmethod
    def _finite(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) is None:
            raise ValueError("give a duration such as '30s' or '1h' ('never' is not one here)")
        return value


# A route's path: "/" or "/"-separated segments of URL-safe characters, no "." or "..".
_SEGMENT = r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*"
_ROUTE_PATH = re.compile(rf"^/({_SEGMENT}(/{_SEGMENT})*/?)?\Z")
Visibility = Literal["owner", "group", "account", "public"]


def _check_route_path(value: str) -> str:
    if len(value) > 512 or not _ROUTE_PATH.match(value):
        raise ValueError(
            f"{quoted(value)} is not a route path: start with '/', then segments of letters, "
            "digits, '-', '_', '~' and '.' (no '.' or '..' segment), e.g. '/' or '/v1/predict'"
        )
    return value


class Route(StrictModel):
    """A path of the deployment's app served at its stable URL, and who may call it."""

    path: Annotated[str, AfterValidator(_check_route_path)] = Field(
        default="/",
        description="the path prefix served (the app sees the same path), e.g. '/' or '/v1'",
    )
    visibility: Visibility = Field(
        default="owner",
        description="who may call it: 'owner' (the owner, its group's members if a group "
        "owns it, and admins), 'group' (members of any group the owner is in), 'account' "
        "(any signed-in user), 'public' (anyone, no token)",
    )


class HealthCheck(StrictModel):
    """How the control plane checks a replica serves: ``GET path`` answering 2xx or 3xx."""

    path: Annotated[str, AfterValidator(_check_route_path)] = Field(
        default="/", description="the path checked, e.g. '/healthz'"
    )
    interval: float = Field(default=2, ge=0.2, le=300, description="seconds between checks")
    timeout: float = Field(default=2, gt=0, le=60, description="seconds a check may take")
    failures: int = Field(
        default=3,
        ge=1,
        le=100,
        description="checks failed in a row that make a replica unhealthy: it gets no traffic "
        "and is replaced (a new version's replica: the rollout stops)",
    )
    start_period: float = Field(
        default=120,
        ge=0,
        le=3600,
        description="seconds a new replica may take to pass its first check before it "
        "counts as failed",
    )


class DeploymentSpec(CommonSpec):
    """An HTTP service: ``scale`` replicas of ``command``, each listening on ``$PORT``,
    served through the control plane at ``/deploy/<owner>/<name>/`` to callers its
    ``routes`` let in; a changed recipe rolls out one replica at a time."""

    command: str | list[str] = Field(
        description="shell command or argv list serving HTTP on $PORT (on $TITAN_BIND_HOST)"
    )
    scale: int = Field(default=1, ge=1, le=100, description="replicas serving at once")
    routes: list[Route] = Field(
        default_factory=lambda: [Route()],
        min_length=1,
        max_length=32,
        description="paths served through the control plane and who may call each; the "
        "longest matching path decides",
    )
    health_check: HealthCheck = Field(
        default_factory=HealthCheck,
        description="checked on every replica; a replica gets traffic only once it passes",
    )

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | list[str]) -> str | list[str]:
        return _check_command(value)

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: list[Route]) -> list[Route]:
        paths = [route.path.rstrip("/") or "/" for route in value]
        twice = sorted({p for p in paths if paths.count(p) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} is the path of more than one route")
        return value


class RecipeBase(StrictModel):
    """The envelope every recipe shares."""

    type: str

    schema_version: Literal[1] = Field(default=1, description="always 1 for now")
    name: Label = Field(description="DNS label, unique per owner and type")
    owner: Label | None = Field(default=None, description="user or group; default: the caller")
    description: str = Field(default="", max_length=2000)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        return _check_text(value)

    @property
    def cluster(self) -> ClusterFields | None:
        """The cluster this resource runs or has attached, if any."""
        spec = getattr(self, "spec", None)
        if isinstance(spec, ClusterFields):
            return spec
        if isinstance(spec, Attaching):
            return spec.cluster or spec.dask_cluster
        return None


class WorkspaceRecipe(RecipeBase):
    """A JupyterLab workspace."""

    type: Literal["workspace"]
    spec: WorkspaceSpec = Field(default_factory=WorkspaceSpec)


class ClusterRecipe(RecipeBase):
    """A Dask or Ray cluster."""

    type: Literal["cluster"]
    spec: ClusterSpec = Field(default_factory=ClusterSpec)


class JobRecipe(RecipeBase):
    """A job: a command run once, or on a schedule."""

    type: Literal["job"]
    spec: JobSpec


class DeploymentRecipe(RecipeBase):
    """A deployment: replicas of an HTTP service behind the control plane."""

    type: Literal["deployment"]
    spec: DeploymentSpec


Recipe = Annotated[
    WorkspaceRecipe | ClusterRecipe | JobRecipe | DeploymentRecipe, Field(discriminator="type")
]
RECIPE_ADAPTER: TypeAdapter[Recipe] = TypeAdapter(Recipe)
_BY_TYPE: dict[str, type[RecipeBase]] = {
    "workspace": WorkspaceRecipe,
    "cluster": ClusterRecipe,
    "job": JobRecipe,
    "deployment": DeploymentRecipe,
}


class RecipeInvalid(ValueError):
    """A recipe failed validation; ``problems`` lists each with path, message and value."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{p['path']}: {p['message']}" for p in problems))
        self.problems = problems


def parse_recipe(data: Any, instance_types: dict[str, Any] | None = None) -> Recipe:
    """Validate ``data`` as a recipe; raise RecipeInvalid naming every problem."""
    if not isinstance(data, dict):
        raise RecipeInvalid([problem("", "a recipe must be a JSON object", data)])
    kind = data.get("type")
    if kind in RESERVED_TYPES:
        raise RecipeInvalid(
            [problem("type", f"{quoted(kind)} is reserved for a later version of Titan", kind)]
        )
    if kind not in RESOURCE_TYPES:
        allowed = ", ".join(RESOURCE_TYPES)
        raise RecipeInvalid([problem("type", f"must be one of: {allowed}", kind)])
    context = {"instance_types": instance_types} if instance_types is not None else None
    from pydantic import ValidationError

    try:
        return RECIPE_ADAPTER.validate_python(data, context=context)
    except ValidationError as exc:
        raise RecipeInvalid(recipe_problems(_BY_TYPE[kind], exc.errors(), data)) from None


def recipe_document(recipe: RecipeBase) -> dict[str, Any]:
    """The canonical JSON form of a recipe: what is stored, compared and read back."""
    return recipe.model_dump(mode="json", exclude_none=True)
