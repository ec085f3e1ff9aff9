"""Resource operations behind the API: apply, plan, read, start, stop, delete, logs.

Each records intent in one transaction and wakes the reconciler; none of them
starts or stops anything itself.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service.backends.base import Backend
from service.backends.log_times import read_process_log
from service.config import Settings
from service.core.capacity.fit import check_fits, node_sizes
from service.core.capacity.ledger import Overcommit
from service.core.capacity.quotas import check_recipe, check_running_count
from service.core.control.records import lock_resource, request_of
from service.core.control.run_rules import Trigger
from service.core.control.state import FINISHED, Phase, Status, Target
from service.core.identity.access import (
    Principal,
    check_resource,
    require_user,
    resolve_owner,
    visible,
)
from service.core.identity.accounts import run_as
from service.core.identity.auth import dashboard_ticket, jupyter_token, workspace_ticket
from service.core.identity.users import check_owner_enabled
from service.core.sharing.folders import check_folders
from service.core.sharing.image_registry import ImageService
from service.core.sharing.secrets import check_refs
from service.core.workloads.dashboards import dashboard_path, deployment_path, jupyter_path
from service.core.workloads.job_runs import (
    begin_run,
    is_scheduled,
    latest_run,
    open_run,
    process_of,
    run_of,
    schedule_key,
)
from service.core.workloads.outputs import list_outputs, open_output
from service.core.workloads.processes import planned_processes
from service.core.workloads.programs import REPLICA
from service.core.workloads.replicas import Health
from service.core.workloads.serving import ServingTable
from service.core.workloads.worker_names import next_workers
from service.database.models import Process, Resource, StatusEvent, utcnow
from service.engines import ENGINES, engine_of
from service.engines.base import PlannedProcess
from service.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from service.recipes.diff import field_changes, process_changes
from service.recipes.models import (
    CommonSpec,
    RecipeBase,
    RecipeInvalid,
    parse_recipe,
    recipe_document,
)

RESOURCE_TYPES = ("workspace", "cluster", "job", "deployment")
# A listing page holds at most this many resources (the API's default and largest limit).
PAGE_MOST = 500


class ResourceService:
    """The resource operations a caller may perform, with ownership checked."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        backend: Backend,
        wake: Callable[[str], None],
        key: bytes,
        images: ImageService | None = None,
        serving: ServingTable | None = None,
    ) -> None:
        self.sessions = sessions
        self.serving = serving or ServingTable()  # deployments' replicas' health
        self.images = images or ImageService(sessions, settings)
        self.settings = settings
        self.backend = backend
        self.wake = wake
        self.key = key
        # One admission at a time (applies, starts, runs begun by hand or by schedule).
        self.admitting = threading.Lock()

    # -- apply and plan -------------------------------------------------------------

    def parse(self, data: Any) -> RecipeBase:
        """A validated recipe, or InvalidInput listing every problem."""
        try:
            return parse_recipe(data, self.settings.instance_types)
        except RecipeInvalid as exc:
            count = len(exc.problems)
            raise InvalidInput(
                f"the recipe has {count} problem{'s' * (count != 1)}: {exc}", exc.problems
            ) from None

    def apply(
        self, principal: Principal, data: Any, if_generation: int | None = None
    ) -> dict[str, Any]:
        """Create or update the resource ``data`` describes; idempotent.

        With ``if_generation`` the write happens only if the resource is still at that
        generation (0: only if it does not exist yet), else Conflict: an edit made from
        an older read never silently overwrites someone else's apply.
        Returns ``{"action": "created"|"updated"|"unchanged", "resource", "plan"}``.
        """
        require_user(principal)
        recipe = self.parse(data)
        try:
            # One admission at a time: the running-resources quota counts what it admits,
            # and an If-Match check and its write see no apply in between.
            with self.admitting, self.sessions.begin() as session:
                result = self._apply(session, principal, recipe, if_generation)
        except IntegrityError:
            raise Conflict(
                f"{recipe.type} {recipe.name!r} was created at the same moment; apply again"
            ) from None
        if result["action"] != "unchanged":
            self.wake(result["resource"]["id"])
        return result

    def _apply(
        self,
        session: Session,
        principal: Principal,
        recipe: RecipeBase,
        if_generation: int | None,
    ) -> dict[str, Any]:
        owner = resolve_owner(session, principal, recipe.owner)
        recipe = recipe.model_copy(update={"owner": owner})
        document = recipe_document(recipe)
        existing = _find(session, owner, recipe.type, recipe.name)
        check_generation(recipe, existing, if_generation)
        plan = self._admissible_plan(session, principal, owner, existing, recipe)
        if existing is None or existing.target != Target.RUNNING:
            check_running_count(session, owner, self.settings.default_quota)
        scheduled = is_scheduled(document)
        if existing is None:
            now = utcnow()
            # A job on a schedule waits for it; any other resource (a plain job: its
            # first run) starts now.
            target, status = (
                (Target.STOPPED, Status.STOPPED) if scheduled else (Target.RUNNING, Status.PENDING)
            )
            resource = Resource(
                id=uuid.uuid4().hex,
                owner=owner,
                created_by=principal.user_name,
                type=recipe.type,
                name=recipe.name,
                recipe=document,
                generation=1,
                target=target,
                status=status,
                status_reason="created; its schedule starts its runs"
                if scheduled
                else "created; waiting for the reconciler",
                status_changed_at=now,
                schedule_since=now if scheduled else None,
            )
            session.add(resource)
            session.add(
                StatusEvent(
                    resource_id=resource.id,
                    at=now,
                    from_status=None,
                    to_status=Status.PENDING,
                    reason=resource.status_reason,
                )
            )
            session.flush()
            if recipe.type == "job" and not scheduled:
                begin_run(session, resource, Trigger.MANUAL, self.settings.job_runs_kept)
            return {"action": "created", "resource": self.view(resource), "plan": plan}
        if existing.target == Target.DELETED:
            raise Conflict(f"{existing.type} {existing.name!r} is being deleted; apply it after")
        if existing.recipe == document:
            return {"action": "unchanged", "resource": self.view(existing), "plan": plan}
        if schedule_key(existing.recipe) != schedule_key(document):
            # A new schedule (or one resumed) counts from now: nothing before is "missed".
            existing.schedule_since = utcnow() if scheduled else None
        existing.previous_recipe = existing.recipe
        existing.recipe = document
        existing.generation += 1
        if existing.type != "job" or open_run(session, existing.id) is not None:
            existing.target = Target.RUNNING  # a running job's run goes on, as changed
        elif not scheduled:
            begin_run(
                session, existing, Trigger.MANUAL, self.settings.job_runs_kept
            )  # a changed job runs again
        existing.target_reason = ""
        existing.failures = 0
        existing.next_attempt_at = None
        existing.updated_at = utcnow()
        session.flush()
        return {"action": "updated", "resource": self.view(existing), "plan": plan}

    def rollback(
        self, principal: Principal, type: str, name: str, owner: str | None
    ) -> dict[str, Any]:
        """Apply the deployment's previous recipe again, as a new generation (rolled out
        like any change; a second rollback returns to the recipe rolled back from).
        Returns what :meth:`apply` does; Conflict if there is no previous recipe."""
        require_user(principal)
        if type != "deployment":
            raise InvalidInput(
                f"type: rollback is for deployments, not {type}s; apply the recipe you want"
            )
        with self.admitting, self.sessions.begin() as session:
            resource = self.load(session, principal, type, name, owner, change=True)
            if resource.previous_recipe is None:
                raise Conflict(
                    f"deployment {name!r} has no previous recipe to roll back to: "
                    "it was applied once and never changed"
                )
            recipe = self.parse(resource.previous_recipe)
            result = self._apply(session, principal, recipe, None)
        self.wake(result["resource"]["id"])
        return result

    def plan(self, principal: Principal, data: Any) -> dict[str, Any]:
        """What applying ``data`` would change, applying nothing."""
        require_user(principal)
        recipe = self.parse(data)
        with self.sessions() as session:
            owner = resolve_owner(session, principal, recipe.owner)
            recipe = recipe.model_copy(update={"owner": owner})
            existing = _find(session, owner, recipe.type, recipe.name)
            action = "create" if existing is None else "update"
            plan = self._admissible_plan(session, principal, owner, existing, recipe)
            if existing is not None and not plan["changes"]:
                action = "unchanged"
            return {"action": action, **plan}

    def _admissible_plan(
        self,
        session: Session,
        principal: Principal,
        owner: str,
        existing: Resource | None,
        recipe: RecipeBase,
    ) -> dict[str, Any]:
        """The plan of applying ``recipe``; InvalidInput unless the caller may use its image,
        secrets and folders and it fits ``owner``'s quota when nothing else runs."""
        spec: CommonSpec = recipe.spec  # type: ignore[attr-defined]
        if self.backend.shares_host:  # whose OS account its processes would run as
            run_as(
                session,
                self.settings.os_accounts,
                owner,
                existing.created_by if existing is not None else principal.user_name,
            )
        self.images.check(session, principal, spec.image)
        cluster = recipe.cluster
        if cluster is not None and self.backend.shares_host:
            missing = engine_of(cluster.engine).missing()
            if missing:  # its processes would run here, and could not start
                raise InvalidInput(f"spec.engine: {missing}")
        check_refs(session, principal, owner, spec.secrets)
        check_folders(session, principal, owner, spec.folders)
        plan, processes = self._plan(existing, recipe)
        request = request_of(*processes.values())
        check_recipe(session, owner, request, self.settings.default_quota)
        overcommit = self.overcommit
        sizes = node_sizes(session, overcommit)
        check_fits(sizes, processes.values(), not self.backend.allocates, overcommit)
        return plan

    @property
    def overcommit(self) -> Overcommit:
        """How far nodes promise more than they have: Titan's settings where its ledger
        places processes; none where the backend allocates (Slurm counts real CPUs)."""
        if self.backend.allocates:
            return Overcommit()
        return Overcommit(self.settings.cpu_overcommit, self.settings.memory_overcommit)

    def _plan(
        self, existing: Resource | None, recipe: RecipeBase
    ) -> tuple[dict[str, Any], dict[str, PlannedProcess]]:
        """What changes, and every process the new recipe runs."""
        catalog = self.settings.instance_types
        old_doc: dict[str, Any] = {}
        old: dict[str, Any] = {}
        workers = None
        if existing is not None:
            old_doc = existing.recipe
            if existing.target == Target.RUNNING and existing.status not in FINISHED:
                workers = existing.workers  # the set running now, shaped by adaptive scaling
                old = planned_processes(parse_recipe(old_doc), catalog, workers)
        if recipe.cluster is not None:
            workers = next_workers(recipe.cluster, workers)
        new = planned_processes(recipe, catalog, workers)
        changes = {
            "changes": field_changes(old_doc, recipe_document(recipe)),
            "processes": process_changes(old, new),
        }
        return changes, new

    # -- reading --------------------------------------------------------------------

    def list_visible(
        self, principal: Principal, type: str | None = None, owner: str | None = None
    ) -> list[dict[str, Any]]:
        """Every resource the caller may see, optionally of one type or owner, page by page."""
        views, after = self.page(principal, type, owner)
        while after is not None:
            more, after = self.page(principal, type, owner, after=after)
            views.extend(more)
        return views

    def page(
        self,
        principal: Principal,
        type: str | None = None,
        owner: str | None = None,
        limit: int = PAGE_MOST,
        after: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the resources the caller may see (optionally of one type or owner),
        ordered by owner, type and name: at most ``limit`` of those after the cursor
        ``after`` ("owner/type/name"), and the cursor of the next page (None: last page)."""
        where = visible(principal, Resource.owner)
        if type is not None:
            where.append(Resource.type == _check_type(type))
        if owner is not None:
            where.append(Resource.owner == owner)
        if after is not None:
            where.append(tuple_(*_LISTED[1:4]) > tuple_(*_cursor_parts(after)))
        # Plain rows of the shown columns only (no recipes, no handles, no ORM objects):
        # the listing is the API's hottest read.
        with self.sessions() as session:
            connection = session.connection()  # Core rows: no ORM compile or load step
            query = select(*_LISTED).where(*where).order_by(*_LISTED[1:4]).limit(limit + 1)
            rows = connection.execute(query).all()
            rows, more = rows[:limit], len(rows) > limit
            processes: dict[str, list[Any]] = {row.id: [] for row in rows}
            if rows:
                ids = Process.resource_id.in_(list(processes))
                for process in connection.execute(
                    select(*_PROCESS_FIELDS).where(ids).order_by(Process.name)
                ):
                    processes[process.resource_id].append(process)
        after_this = f"{rows[-1].owner}/{rows[-1].type}/{rows[-1].name}" if more else None
        return [self._view(row, processes[row.id]) for row in rows], after_this

    def engines(self, ids: list[str]) -> dict[str, str]:
        """The cluster engine ("dask", "ray") of each resource in ``ids`` that has a
        cluster (its own or attached); those without one are left out."""
        if not ids:
            return {}
        with self.sessions() as session:
            rows = session.execute(select(Resource.id, Resource.recipe).where(Resource.id.in_(ids)))
            return {id: engine for id, recipe in rows if (engine := recipe_engine(recipe))}

    def get(self, principal: Principal, type: str, name: str, owner: str | None) -> dict[str, Any]:
        """One resource as the API shows it."""
        with self.sessions() as session:
            return self.view(self.load(session, principal, type, name, owner))

    def recipe(
        self, principal: Principal, type: str, name: str, owner: str | None
    ) -> tuple[dict[str, Any], int]:
        """The resource's recipe, ready to be applied again unchanged, and the generation
        it is (to send back as ``If-Match`` when applying an edit of it)."""
        with self.sessions() as session:
            resource = self.load(session, principal, type, name, owner)
            return dict(resource.recipe), resource.generation

    def history(
        self, principal: Principal, type: str, name: str, owner: str | None
    ) -> list[dict[str, Any]]:
        """Every status change of the resource, oldest first."""
        with self.sessions() as session:
            return _history(session, self.load(session, principal, type, name, owner))

    def details(
        self, principal: Principal, type: str, name: str, owner: str | None, changes: int
    ) -> Details:
        """The resource as ``get`` shows it, its recipe, and its latest ``changes`` status
        changes (newest first), read at once (a console page shows them together)."""
        with self.sessions() as session:
            resource = self.load(session, principal, type, name, owner)
            history = _history(session, resource, changes)
            return Details(self.view(resource), dict(resource.recipe), resource.generation, history)

    # -- changing the target ----------------------------------------------------------

    def set_target(
        self, principal: Principal, type: str, name: str, owner: str | None, target: Target
    ) -> dict[str, Any]:
        """Record that the resource should be running, stopped or deleted."""
        with self.admitting, self.sessions.begin() as session:
            resource = self.load(session, principal, type, name, owner, change=True)
            if resource.target == Target.DELETED and target != Target.DELETED:
                raise Conflict(f"{type} {name!r} is being deleted")
            if target == Target.RUNNING and resource.target != Target.RUNNING:
                check_owner_enabled(session, resource.owner)
                check_running_count(session, resource.owner, self.settings.default_quota)
            if resource.type == "job":
                lock_resource(session, resource.id)  # no run ends or begins meanwhile
            running = open_run(session, resource.id) if resource.type == "job" else None
            if target == Target.RUNNING and resource.type == "job" and running is None:
                # Starting a job that does not run begins a run of it (a finished job runs
                # again); one that runs goes on.
                begin_run(session, resource, Trigger.MANUAL, self.settings.job_runs_kept)
            resource.target = target
            resource.target_reason = ""  # the user's request, not the control plane's
            resource.failures = 0  # an explicit request retries now, not after the backoff
            resource.next_attempt_at = None
            resource.updated_at = utcnow()
            view = self.view(resource)
        self.wake(view["id"])
        return view

    # -- logs -----------------------------------------------------------------------------

    async def logs(
        self,
        principal: Principal,
        type: str,
        name: str,
        owner: str | None,
        process: str | None = None,
        tail: int | None = None,
        offset: int = 0,
        since: float | None = None,
        timestamps: bool = False,
        run: int | None = None,
    ) -> dict[str, Any]:
        """Output of the resource's processes: ``{"processes": {name: {"text", "offset",
        "run"}}}`` (see :func:`~service.backends.log_times.read_process_log`); with ``run``,
        that run's job process (a job's older runs keep their logs)."""

        def load() -> list[tuple[str, dict[str, Any]]]:
            with self.sessions() as session:
                resource = self.load(session, principal, type, name, owner)
                if run is not None:
                    return _run_handles(session, resource, run)
                handles = [(p.name, p.handle) for p in resource.processes if p.handle]
                if process is not None:
                    handles = [h for h in handles if h[0] == process]
                    if not handles:
                        known = ", ".join(p.name for p in resource.processes) or "none running"
                        raise NotFound(f"process {process!r} not found; processes: {known}")
                return [(n, h) for n, h in handles if h is not None]

        handles = await asyncio.to_thread(load)
        out: dict[str, Any] = {}
        for process_name, handle in handles:
            out[process_name] = await read_process_log(
                self.backend, handle, tail, offset, since, timestamps
            )
        return {"processes": out}

    def outputs(
        self, principal: Principal, type: str, name: str, owner: str | None, run: int | None = None
    ) -> dict[str, Any]:
        """The files the job wrote to ``$TITAN_OUTPUT_DIR`` in run ``run`` (default: its
        latest), see outputs.py; ``run`` in the answer says which run that was."""
        whose, kind, called, number = self._outputs_of(principal, type, name, owner, run)
        listed = list_outputs(self.settings.outputs_dir, whose, kind, called, number)
        return {**listed, "run": number}

    def output_file(
        self,
        principal: Principal,
        type: str,
        name: str,
        owner: str | None,
        path: str,
        run: int | None = None,
    ) -> tuple[int, int]:
        """``(descriptor, size)`` of one output file of run ``run`` (default: the latest);
        the caller reads and closes it."""
        whose, kind, called, number = self._outputs_of(principal, type, name, owner, run)
        return open_output(self.settings.outputs_dir, whose, kind, called, path, number)

    def _outputs_of(
        self, principal: Principal, type: str, name: str, owner: str | None, run: int | None
    ) -> tuple[str, str, str, int | None]:
        """Whose outputs: owner, type, name and the run (None: a job that never ran, or
        ran before runs were recorded, keeps them in its own folder)."""
        with self.sessions() as session:
            resource = self.load(session, principal, type, name, owner)
            if run is None:
                latest = latest_run(session, resource.id)
                run = latest.number if latest is not None else None
            elif run_of(session, resource.id, run) is None:
                raise NotFound(f"{type} {name!r} has no run {run}; `titan runs` lists them")
            return resource.owner, resource.type, resource.name, run

    # -- helpers ----------------------------------------------------------------------

    def load(
        self,
        session: Session,
        principal: Principal,
        type: str,
        name: str,
        owner: str | None,
        change: bool = False,
    ) -> Resource:
        """The resource ``principal`` names, if they may see it (and ``change`` it);
        NotFound (or Forbidden) otherwise."""
        _check_type(type)
        owner = owner or _default_owner(session, principal)
        resource = _find(session, owner, type, name)
        if resource is None:
            raise NotFound(f"{type} {name!r} of owner {owner!r} not found")
        check_resource(principal, resource, change)
        return resource

    def dashboard_endpoint(
        self, resource_id: str, principal: Principal | None, ticket: str | None
    ) -> tuple[str, str]:
        """The engine of the resource's cluster and where its dashboard listens, if the
        caller may see it: ``principal`` (the owner or an admin), or a holder of the
        resource's dashboard ticket."""
        resource = self._behind_the_door(
            resource_id, principal, ticket, dashboard_ticket, "dashboard link", "cluster", False
        )
        cluster = parse_recipe(resource.recipe).cluster
        engine = engine_of(cluster.engine) if cluster is not None else None
        for process in resource.processes:
            endpoints = process.endpoints or {}
            if engine and process.state == Phase.RUNNING and engine.dashboard in endpoints:
                return engine.name, str(endpoints[engine.dashboard])
        raise NotFound(f"{resource.type} {resource.name!r} has no running dashboard")

    def jupyter_upstream(
        self, resource_id: str, principal: Principal | None, ticket: str | None
    ) -> tuple[str, dict[str, str]]:
        """Where to relay a request for the workspace's JupyterLab (the URL its path is
        appended to) and the headers to add (JupyterLab's own token), if the caller may
        use it: ``principal`` (who may change the workspace) or a holder of its ticket."""
        resource = self._behind_the_door(
            resource_id, principal, ticket, workspace_ticket, "JupyterLab link", "workspace", True
        )
        for process in resource.processes:
            endpoint = (process.endpoints or {}).get("jupyter")
            if endpoint and process.state == Phase.RUNNING:
                base = str(endpoint).rstrip("/") + jupyter_path(resource_id)
                return base, {"Authorization": f"token {jupyter_token(self.key, resource_id)}"}
        raise NotFound(f"{resource.type} {resource.name!r} has no running JupyterLab")

    def _behind_the_door(
        self,
        resource_id: str,
        principal: Principal | None,
        ticket: str | None,
        ticket_of: Callable[[bytes, str], str],
        link: str,
        whose: str,
        change: bool,
    ) -> Resource:
        """The resource (with its processes) a front-door route relays to, if the caller
        may: ``principal`` by the access rules, or a holder of its ``ticket_of`` ticket."""
        if principal is None and not (
            ticket and hmac.compare_digest(ticket, ticket_of(self.key, resource_id))
        ):
            raise Unauthenticated(
                f"open the {link} the API shows for the {whose} (it carries a ticket), "
                "or send 'Authorization: Bearer <token>'"
            )
        with self.sessions() as session:
            resource = session.scalar(
                select(Resource)
                .options(selectinload(Resource.processes))
                .where(Resource.id == resource_id)
            )
            if resource is None:
                raise NotFound(f"no resource with id {resource_id!r}")
            if principal is not None:
                check_resource(principal, resource, change)
            return resource

    def view(self, resource: Resource) -> dict[str, Any]:
        """A resource as the API returns it."""
        return self._view(resource, resource.processes)

    def _view(self, resource: Any, processes: list[Any]) -> dict[str, Any]:
        """The view of anything with a resource's and its processes' listed fields
        (ORM objects or plain rows)."""
        endpoints: dict[str, str] = {}
        for process in processes:
            endpoints.update(process.endpoints or {})
        if "jupyter" in endpoints:  # only through the control plane, with its ticket
            ticket = workspace_ticket(self.key, resource.id)
            path = jupyter_path(resource.id)
            endpoints["jupyter"] = f"{self.settings.api_url}{path}/lab?ticket={ticket}"
        workers = _workers_view(resource.workers, processes)
        health: dict[str, str] = {}
        if resource.type == "deployment":  # its replicas only through the front door
            endpoints.pop(REPLICA, None)
            url = f"{self.settings.api_url}{deployment_path(resource.owner, resource.name)}/"
            endpoints["url"] = url
            health = dict(self.serving.health(resource.id))
            scale = int(resource.recipe.get("spec", {}).get("scale", 1))
            workers = {"ready": sum(h == Health.HEALTHY for h in health.values()), "wanted": scale}
        engine = next(
            (e for e in ENGINES.values() if any(p.name == e.head for p in processes)), None
        )
        if engine is not None and engine.dashboard in endpoints:
            # Only through the control plane, with its ticket.
            ticket = dashboard_ticket(self.key, resource.id)
            path = dashboard_path(resource.id)
            link = f"{self.settings.api_url}{path}/{engine.dashboard_page}?ticket={ticket}"
            endpoints[engine.dashboard] = link
        return {
            "id": resource.id,
            "owner": resource.owner,
            "type": resource.type,
            "name": resource.name,
            "generation": resource.generation,
            "observed_generation": resource.observed_generation,
            "target": resource.target,
            "status": resource.status,
            "status_reason": resource.status_reason,
            "status_changed_at": resource.status_changed_at.isoformat(),
            "created_at": resource.created_at.isoformat(),
            "updated_at": resource.updated_at.isoformat(),
            "endpoints": endpoints,
            "workers": workers,  # a deployment's: its healthy replicas of its scale
            # The named workers the control plane keeps (a cluster's; None before its start).
            "worker_names": resource.workers,
            "processes": [_process_view(p, health.get(p.name)) for p in processes],
        }


def _run_handles(session: Session, resource: Resource, number: int) -> list[tuple[str, Any]]:
    """The job process's handle of run ``number``: its own while the run goes on, the one
    kept with the run after; NotFound if there is no such run or it never started one."""
    run = run_of(session, resource.id, number)
    if run is None:
        raise NotFound(f"{resource.type} {resource.name!r} has no run {number}")
    if run.finished_at is None:
        name = process_of(session, resource, run)
        handle = next((p.handle for p in resource.processes if p.name == name), None)
    else:
        handle = run.handle
    if not handle:
        raise NotFound(f"run {number} of {resource.name!r} has no logs: it started no process")
    return [("job", handle)]


def _workers_view(wanted: list[str] | None, processes: list[Any]) -> dict[str, int] | None:
    """A cluster's workers: how many serve (joined their cluster) of how many it asks for
    now; None where there is no worker set (no cluster, or not started yet)."""
    if wanted is None:
        return None
    ready = sum(1 for p in processes if p.role == "worker" and p.state == Phase.RUNNING)
    return {"ready": ready, "wanted": len(wanted)}


def _process_view(process: Any, health: str | None) -> dict[str, Any]:
    return {
        "health": health,
        "name": process.name,
        "role": process.role,
        "state": process.state,
        "exit_code": process.exit_code,
        "started_at": process.started_at.isoformat(),
        "finished_at": process.finished_at.isoformat() if process.finished_at else None,
        "endpoints": process.endpoints,
        "node": process.node,  # where it landed, where the backend placed it (Slurm)
        "gpus": process.gpus,
    }


_LISTED = (
    Resource.id,
    Resource.owner,
    Resource.type,
    Resource.name,
    Resource.generation,
    Resource.observed_generation,
    Resource.target,
    Resource.status,
    Resource.status_reason,
    Resource.status_changed_at,
    Resource.created_at,
    Resource.updated_at,
    Resource.workers,
    Resource.recipe,
)
_PROCESS_FIELDS = (
    Process.resource_id,
    Process.name,
    Process.role,
    Process.state,
    Process.exit_code,
    Process.started_at,
    Process.finished_at,
    Process.endpoints,
    Process.gpus,
    Process.node,
)


class Details(NamedTuple):
    """A resource's view, recipe (at ``generation``) and latest status changes."""

    view: dict[str, Any]
    recipe: dict[str, Any]
    generation: int
    history: list[dict[str, Any]]


def _history(session: Session, resource: Resource, latest: int = 0) -> list[dict[str, Any]]:
    """The resource's status changes: all, oldest first; or the ``latest`` ones, newest
    first."""
    query = select(StatusEvent).where(StatusEvent.resource_id == resource.id)
    if latest:
        query = query.order_by(StatusEvent.id.desc()).limit(latest)
    else:
        query = query.order_by(StatusEvent.id)
    return [
        {
            "at": e.at.isoformat(),
            "from": e.from_status,
            "to": e.to_status,
            "reason": e.reason,
            "generation": e.generation,
        }
        for e in session.scalars(query)
    ]


def recipe_engine(recipe: dict[str, Any]) -> str | None:
    """The engine of the cluster a stored recipe runs (a cluster's own, or the one a
    workspace or job attaches); None without a cluster."""
    spec = recipe.get("spec") or {}
    if recipe.get("type") == "cluster":
        return str(spec.get("engine") or "dask")
    if spec.get("dask_cluster"):
        return "dask"
    cluster = spec.get("cluster")
    return str(cluster.get("engine") or "dask") if isinstance(cluster, dict) else None


def check_generation(
    recipe: RecipeBase, existing: Resource | None, if_generation: int | None
) -> None:
    """Conflict unless the resource is at ``if_generation`` (0: absent); None checks nothing."""
    if if_generation is None:
        return
    now = 0 if existing is None or existing.target == Target.DELETED else existing.generation
    if now != if_generation:
        where = "does not exist" if now == 0 else f"is at generation {now}"
        raise Conflict(
            f"If-Match: {recipe.type} {recipe.name!r} {where}, not {if_generation}: someone "
            "changed it since you read it; read its recipe again, redo your edit and apply"
        )


def _cursor_parts(after: str) -> tuple[str, str, str]:
    """A listing cursor ("owner/type/name", as the previous page's next link gives it)."""
    parts = after.split("/")
    fine = all(part and len(part) <= 255 and part.isprintable() for part in parts)
    if len(parts) != 3 or not fine:
        raise InvalidInput(
            f"after: {after[:80]!r} is not a listing cursor; pass 'owner/type/name' of the "
            "last resource seen, as the previous page's Link header (rel=next) gives it"
        )
    return parts[0], parts[1], parts[2]


def _find(session: Session, owner: str, type: str, name: str) -> Resource | None:
    return session.scalar(
        select(Resource)
        .options(selectinload(Resource.processes))
        .where(Resource.owner == owner, Resource.type == type, Resource.name == name)
    )


def _default_owner(session: Session, principal: Principal) -> str:
    if principal.resource_id is not None:
        resource = session.get(Resource, principal.resource_id)
        return resource.owner if resource is not None else principal.user_name
    return principal.user_name


def _check_type(type: str) -> str:
    if type not in RESOURCE_TYPES:
        raise NotFound(f"unknown resource type {type!r}; use one of {', '.join(RESOURCE_TYPES)}")
    return type
