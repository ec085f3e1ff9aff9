"""``RayCluster``: a Titan Ray cluster from Python.

``RayCluster(n_workers=2)`` applies a cluster recipe with ``engine: "ray"`` and
waits until its head and worker nodes run; ``from_name`` and ``attached`` find
an existing one. The object knows the cluster's Ray Client address and token,
connects this process with ``init()``, scales by editing the recipe (the
control plane converges it), reaches Ray's Jobs API through the control plane
with the user's Titan token only (``jobs()``), and ``close()`` deletes what it
created. Ray itself is imported only by ``init``/``jobs`` (``pip install
'titan[ray]'``); everything else speaks Titan's HTTP API.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from service.client.errors import TitanClientError
from service.client.hub import UP, Hub, ResourceRef

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

# What Titan sets in every process of a workspace or job with an attached Ray cluster.
ATTACHED_ENV = ("TITAN_RESOURCE", "TITAN_URL", "TITAN_TOKEN", "RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")
INSTALL = "pip install 'titan[ray]'"


def _ray_module(what: str) -> Any:
    """``import ray``, or an ImportError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"{what} needs Ray in this Python: install it with {INSTALL}") from exc
    return ray


def _ray_with_token(token: str) -> Any:
    """Ray, set to present ``token``: ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` in
    this process's environment, the only place Ray reads them from.

    Ray reads its settings when it is imported and keeps the token it first loads, so
    where Ray was imported already both are reloaded, as Ray does itself when it turns
    token authentication on (``ray._private.authentication``).
    """
    imported = "ray._raylet" in sys.modules
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    ray = _ray_module("RayCluster.init")
    if imported:
        try:
            raylet: Any = importlib.import_module("ray._raylet")
            raylet.Config.initialize("")
            raylet.AuthenticationTokenLoader.instance().reset_cache()
        except (ImportError, AttributeError) as exc:
            raise TitanClientError(
                f"Ray {ray.__version__} was imported before RayCluster.init and cannot be "
                "told the cluster's token now: call init() before importing ray, or start "
                "Python with RAY_AUTH_MODE=token and RAY_AUTH_TOKEN set"
            ) from exc
    return ray


class RayCluster:
    """A Ray cluster run by Titan: a head and ``n_workers`` worker nodes.

    ``RayCluster(n_workers=2, worker={"nthreads": 2, "memory": "4GiB"})`` creates a
    ``cluster`` resource and returns once it runs (TitanClientError if it fails or
    is not up within ``timeout`` seconds; a cluster created here is then deleted).
    ``shutdown_on_close`` (default: True for clusters created here) deletes it on
    ``close()`` and when a ``with`` block ends. ``url``/``token`` default to
    ``TITAN_URL``/``TITAN_TOKEN`` (then the saved login), as for :class:`Hub`;
    ``hub`` gives a client to use instead.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        n_workers: int = 1,
        worker: dict[str, Any] | None = None,
        adaptive: dict[str, int] | None = None,
        image: str | None = None,
        owner: str | None = None,
        url: str | None = None,
        token: str | None = None,
        hub: Hub | None = None,
        timeout: float = 300,
        shutdown_on_close: bool | None = None,
        _existing: ResourceRef | None = None,
        _address: str | None = None,
        _token_path: str | None = None,
    ) -> None:
        self.hub = hub or Hub(url, token)
        self.timeout = timeout
        self._create = _existing is None
        self.ref = _existing or ResourceRef("cluster", name or f"ray-{uuid.uuid4().hex[:8]}", owner)
        self.shutdown_on_close = self._create if shutdown_on_close is None else shutdown_on_close
        self._address = _address
        self._token_path = _token_path
        self._token: str | None = None
        self._jobs: JobSubmissionClient | None = None
        self._connected = False  # whether init() connected this process
        self._closed = False
        # The resource as last seen (id, status, endpoints, ...).
        self.resource: dict[str, Any] = {}
        # The adaptive bounds the control plane carries out (None: a fixed size).
        self.adaptive_bounds: dict[str, int] | None = adaptive
        spec: dict[str, Any] = {"engine": "ray", "n_workers": n_workers}
        if worker is not None:
            spec["worker"] = dict(worker)
        if adaptive is not None:
            spec["adaptive"] = dict(adaptive)
        if image is not None:
            spec["image"] = image
        self._recipe: dict[str, Any] = {"type": "cluster", "name": self.ref.name, "spec": spec}
        if owner is not None:
            self._recipe["owner"] = owner
        self._start()

    @classmethod
    def from_name(
        cls,
        name: str,
        url: str | None = None,
        token: str | None = None,
        owner: str | None = None,
        *,
        hub: Hub | None = None,
        timeout: float = 300,
        shutdown_on_close: bool = False,
    ) -> RayCluster:
        """The existing Ray cluster ``name``, once it is up; closing it leaves it running
        unless ``shutdown_on_close``. TitanClientError if it is no Ray cluster."""
        return cls(
            url=url,
            token=token,
            hub=hub,
            timeout=timeout,
            shutdown_on_close=shutdown_on_close,
            _existing=ResourceRef("cluster", name, owner),
        )

    @classmethod
    def attached(cls, timeout: float = 300) -> RayCluster:
        """The Ray cluster of the Titan workspace or job this code runs in, from the
        environment Titan sets there; closing it leaves it running. TitanClientError
        naming the missing variables anywhere else."""
        missing = [key for key in ATTACHED_ENV if not os.environ.get(key)]
        resource = os.environ.get("TITAN_RESOURCE", "")
        owner, _, ref = resource.partition("/")
        if missing or "/" not in ref:
            absent = ", ".join(missing) if missing else f"a valid TITAN_RESOURCE (got {resource!r})"
            raise TitanClientError(
                f"no attached Ray cluster: {absent} not set; Titan sets them only inside a "
                "workspace or job with a Ray cluster (spec.cluster.engine 'ray'); elsewhere "
                "use RayCluster.from_name(name, url=..., token=...)"
            )
        return cls(
            timeout=timeout,
            shutdown_on_close=False,
            _existing=ResourceRef.parse(ref, owner),
            # How this process reaches the head (in a container: by name on its network).
            _address=os.environ["RAY_ADDRESS"],
            _token_path=os.environ["RAY_AUTH_TOKEN_PATH"],
        )

    # -- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        generation = 0
        try:
            if self._create:
                applied = self.hub.apply(self._recipe)
                generation = applied["resource"]["generation"]
                self.ref = ResourceRef(self.ref.type, self.ref.name, applied["resource"]["owner"])
                self.resource = applied["resource"]
            else:
                fields = self._cluster_fields(self.hub.recipe(self.ref))
                self.adaptive_bounds = fields.get("adaptive")
            # A degraded cluster serves (its head runs while a worker node is replaced).
            self.resource = self.hub.wait(
                self.ref, set(UP), timeout=self.timeout, generation=generation
            )
        except BaseException:
            if self._create and self.resource:
                # Do not leave behind a cluster that nobody holds; the first error is the news.
                with contextlib.suppress(Exception):
                    self._delete()
            raise

    def close(self) -> None:
        """Disconnect this process if ``init()`` connected it, and delete the cluster
        (waiting until it is gone) if this object owns it. No-op once closed."""
        if self._closed:
            return
        self._closed = True
        ray = sys.modules.get("ray")
        if self._connected and ray is not None and ray.is_initialized():
            ray.shutdown()
        self._connected = False
        if self.shutdown_on_close and self.resource:
            self._delete()

    def _delete(self) -> None:
        self.hub.delete(self.ref)
        self.hub.wait_gone(self.ref, timeout=self.timeout)

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- how to reach it --------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The Ray Client address, ``ray://HOST:PORT`` (attached: ``RAY_ADDRESS``)."""
        if self._address:
            return self._address
        address = self.resource.get("endpoints", {}).get("ray")
        if not address:
            raise TitanClientError(f"{self.ref} shows no Ray address (is it running?)")
        return str(address)

    @property
    def token(self) -> str:
        """The cluster's Ray token: Ray answers nothing without it. Fetched once from
        the credentials API (attached: read from ``RAY_AUTH_TOKEN_PATH``)."""
        if self._token is None:
            if self._token_path:
                self._token = Path(self._token_path).read_text().strip()
            else:
                self._token = str(self.hub.credentials(self.ref)["ray_token"])
        return self._token

    @property
    def dashboard_link(self) -> str:
        """The Ray dashboard through the control plane (the link carries a ticket that
        lets a browser read it; acting needs the Titan token, see :meth:`jobs`)."""
        link = self.resource.get("endpoints", {}).get("dashboard")
        if not link:
            raise TitanClientError(f"{self.ref} shows no dashboard (is it running?)")
        return str(link)

    def refresh(self) -> dict[str, Any]:
        """The resource as the control plane sees it now (also kept in ``resource``)."""
        self.resource = self.hub.get(self.ref)
        return self.resource

    def init(self, **kwargs: Any) -> Any:
        """Connect this process to the cluster: ``ray.init(self.address, **kwargs)``;
        returns what ``ray.init`` does.

        Ray reads its token only from the environment, so this first sets
        ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` in ``os.environ``: the token
        then reaches whatever this process starts or lets read its environment, and
        takes precedence over ``RAY_AUTH_TOKEN_PATH``. Where Ray was imported
        already, its settings are reloaded to take the token in. ImportError naming
        ``pip install 'titan[ray]'`` where Ray is missing.
        """
        ray = _ray_with_token(self.token)
        context = ray.init(self.address, **kwargs)
        self._connected = True
        return context

    def jobs(self) -> JobSubmissionClient:
        """Ray's Jobs API of this cluster through the control plane, authenticated
        with the user's Titan token only (the cluster's Ray token never leaves the
        server): a ``ray.job_submission.JobSubmissionClient``, made once. ImportError
        naming ``pip install 'titan[ray]'`` where Ray is missing."""
        if self._jobs is None:
            _ray_module("RayCluster.jobs")
            from ray.job_submission import JobSubmissionClient

            if not self.hub.token:
                raise TitanClientError(
                    "the Jobs API needs a Titan token: pass token= or set TITAN_TOKEN"
                )
            if "id" not in self.resource:
                self.refresh()
            base = f"{self.hub.url}/dashboards/{self.resource['id']}"
            headers = {"Authorization": f"Bearer {self.hub.token}"}
            self._jobs = JobSubmissionClient(base, headers=headers)
        return self._jobs

    def submit_job(self, entrypoint: str, **kwargs: Any) -> str:
        """Submit ``entrypoint`` (a shell command run on the head) as a Ray job; its
        submission id. ``kwargs`` go to ``JobSubmissionClient.submit_job``
        (``runtime_env``, ``submission_id``, ``entrypoint_num_cpus``, ...)."""
        return str(self.jobs().submit_job(entrypoint=entrypoint, **kwargs))

    # -- scaling ------------------------------------------------------------------------------

    def scale(self, n: int, wait: bool = True) -> None:
        """Ask the control plane for ``n`` worker nodes; this ends adaptive scaling.

        With ``wait`` (the default), return once the control plane has carried the
        change out and the cluster is up (TitanClientError after ``timeout``).
        """
        self.adaptive_bounds = None
        self._change({"n_workers": int(n)}, ["adaptive"], wait)

    def adapt(self, minimum: int = 0, maximum: int | None = None, wait: bool = True) -> None:
        """Let the control plane scale between ``minimum`` and ``maximum`` worker nodes
        from the cluster's pending work (it goes on after this client exits). With
        ``wait``, return once the control plane has taken the bounds in."""
        if maximum is None:
            raise TitanClientError("adapt needs maximum=: the most worker nodes it may have")
        bounds = {"minimum": int(minimum), "maximum": int(maximum)}
        self._change({"adaptive": bounds}, [], wait)
        self.adaptive_bounds = bounds

    def _change(self, values: dict[str, Any], remove: list[str], wait: bool) -> None:
        def change(recipe: dict[str, Any]) -> None:
            fields = self._cluster_fields(recipe)
            fields.update(values)
            for key in remove:
                fields.pop(key, None)

        applied = self.hub.edit(self.ref, change)  # never loses a concurrent apply
        self.resource = applied["resource"]
        if wait:
            generation = applied["resource"]["generation"]
            self.resource = self.hub.wait(
                self.ref, set(UP), timeout=self.timeout, generation=generation
            )

    def _cluster_fields(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """The recipe's cluster (a ``cluster`` resource's spec, or a workspace's or job's
        attached ``cluster``), edited in place by scaling; TitanClientError unless Ray."""
        spec = recipe["spec"]
        fields = spec if self.ref.type == "cluster" else spec.get("cluster")
        if not isinstance(fields, dict):
            raise TitanClientError(f"{self.ref} has no Ray cluster attached")
        engine = fields.get("engine", "dask")
        if engine != "ray":
            raise TitanClientError(
                f"{self.ref} runs engine {engine!r}, not Ray: use TitanCluster for Dask clusters"
            )
        return fields

    def __repr__(self) -> str:
        status = self.resource.get("status", "unknown")
        return f"RayCluster[{self.ref}] ({status})"
