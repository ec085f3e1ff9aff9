"""The reconciler: moves every resource from its observed status toward its target.

A de-duplicating queue of resource ids feeds a bounded number of workers; a
resource is never reconciled twice at once. A periodic resync re-checks every
resource against reality, so a process that dies is noticed and restarted.
Failures back off exponentially (the delay is stored, so it survives restarts).
A failure that leaves the essential processes running (a worker died or
would not start while its cluster's head serves) makes the resource ``degraded``,
never ``failed``: it is a repair in progress, not an outage.
All database work runs in threads; backend calls are async.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from service.backends.base import (
    Backend,
    Handle,
    ProcessSpec,
    ProcessState,
    Queued,
    handle_identity,
)
from service.config import Settings
from service.core.capacity.ledger import (
    Inventory,
    Overcommit,
    Request,
    Unplaceable,
    holdings,
    place,
    record_nodes,
)
from service.core.capacity.quotas import check_allocation
from service.core.capacity.usage import close_ended
from service.core.control import records
from service.core.control.autoscaler import Autoscaler
from service.core.control.periodic import every
from service.core.control.run_rules import RunStatus
from service.core.control.state import FINISHED, SERVING, Phase, Status, Target, set_status
from service.core.control.tasks import cancel_all
from service.core.identity.accounts import run_as
from service.core.identity.auth import jupyter_token
from service.core.sharing.folders import ensure_mounted, mounts
from service.core.sharing.secrets import Vault, secret_values, vault_of, with_secrets
from service.core.workloads import job_runs
from service.core.workloads.cluster_credentials import ClusterConnections, cluster_credentials
from service.core.workloads.dashboards import dashboard_path, jupyter_path
from service.core.workloads.outputs import outputs_folder
from service.core.workloads.processes import endpoints_of, launch_of, planned_processes
from service.core.workloads.replicas import Health, Step, is_replica, rollout_step
from service.core.workloads.serving import ServingTable
from service.core.workloads.worker_names import is_worker
from service.database.db import in_transaction
from service.database.models import Process, Resource, utcnow
from service.engines import engine_of
from service.engines.base import Engine, Place, PlannedProcess
from service.recipes.models import DeploymentRecipe, SecretRef, parse_recipe

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAIN_SECONDS = 30.0  # longest wait for a leaving replica's requests to be answered


@dataclass(frozen=True)
class Observed:
    """A recorded process and what the backend says of it now."""

    name: str
    spec_hash: str
    handle: Handle | None
    cluster_address: str | None
    state: ProcessState
    interrupted: bool = False
    queued: bool = False  # the backend's scheduler queued it; not started yet


class Reconciler:
    """Drives resources to their targets through one backend."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        backend: Backend,
        settings: Settings,
        key: bytes,
        inventory: Inventory | None = None,
        tokens_revoked: Callable[[], None] = lambda: None,
        timed: Callable[[float], None] = lambda seconds: None,
        vault: Vault | None = None,
        serving: ServingTable | None = None,
    ) -> None:
        self.sessions = sessions
        self.serving = serving or ServingTable()  # deployments' replicas and their health
        self.vault = vault or vault_of(settings)  # decrypts secrets into the processes only
        self.tokens_revoked = tokens_revoked
        self.timed = timed  # told how long each reconcile pass took
        self.given_inventory = inventory
        self.inventory = inventory  # where Titan's ledger places (not where the backend does)
        self.overcommit = Overcommit(settings.cpu_overcommit, settings.memory_overcommit)
        self.backend = backend
        self.settings = settings
        self.key = key
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._seen: set[str] = set()  # reconciled at least once since this start
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._allocating = asyncio.Lock()
        self.connections = ClusterConnections(sessions, self.vault, settings.dask_tls)
        self.autoscaler = Autoscaler(sessions, settings, self.wake, self.connections)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Stop orphans the store does not know of, then begin reconciling."""
        self._loop = asyncio.get_running_loop()
        nodes = await self.refresh_nodes()
        for node in nodes:
            log.info(
                "node %s (%s): %g CPUs, %.1f GiB, %d GPU(s), %s",
                node.name,
                node.address or self.backend.name,
                node.cpus,
                node.memory_bytes / 1024**3,
                len(node.gpus),
                node.state,
            )
        await self.stop_orphans()
        for index in range(self.settings.reconcile_parallelism):
            self._tasks.append(asyncio.create_task(self._work(), name=f"reconcile-{index}"))
        self._tasks.append(asyncio.create_task(self._resync(), name="resync"))
        self.autoscaler.start()

    async def close(self) -> None:
        """Stop reconciling; running processes are left alone to be adopted later."""
        await self.autoscaler.close()
        await cancel_all(self._tasks)

    def seen(self, resource_id: str) -> bool:
        """Whether ``resource_id`` was reconciled since this control plane started: what
        the store says of its processes was checked against the backend since."""
        return resource_id in self._seen

    @property
    def queue_depth(self) -> int:
        """Resources waiting for a reconcile pass or in one."""
        return self._queue.qsize() + len(self._active)

    def wake(self, resource_id: str) -> None:
        """Queue ``resource_id`` for reconciling; safe to call from any thread."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._enqueue, resource_id)

    def _enqueue(self, resource_id: str) -> None:
        if resource_id in self._active:
            self._dirty.add(resource_id)  # reconcile again once the current pass ends
        elif resource_id not in self._queued:
            self._queued.add(resource_id)
            self._queue.put_nowait(resource_id)

    async def _work(self) -> None:
        while True:
            resource_id = await self._queue.get()
            self._queued.discard(resource_id)
            self._active.add(resource_id)
            started = time.perf_counter()
            try:
                await self.reconcile(resource_id)
            except Degraded as exc:
                log.warning("resource %s degraded: %s", resource_id[:8], exc)
                await self._db(self._record_failure, resource_id, str(exc), Status.DEGRADED)
            except Exception as exc:
                log.exception("reconciling %s failed", resource_id)
                await self._db(self._record_failure, resource_id, str(exc) or repr(exc))
            finally:
                self.timed(time.perf_counter() - started)
                self._seen.add(resource_id)
                self._active.discard(resource_id)
                if resource_id in self._dirty:
                    self._dirty.discard(resource_id)
                    self._enqueue(resource_id)

    async def refresh_nodes(self) -> list[Inventory]:
        """Record the nodes as the backend reports them now (the one given at construction
        instead, where a test gave one); where Titan alone allocates, it places on the first."""
        nodes = [self.given_inventory] if self.given_inventory else await self.backend.nodes()
        if not self.backend.allocates:
            self.inventory = nodes[0]
        await self._db(record_nodes, nodes)
        return nodes

    async def _resync(self) -> None:
        await every(lambda: self.settings.resync_seconds, self._resync_once, "resync")

    async def _resync_once(self) -> None:
        await self.refresh_nodes()
        for resource_id in await self._db(records.due_resources):
            self._enqueue(resource_id)
        await self._db(close_ended)  # usage: the allocations of gone processes end

    async def stop_orphans(self) -> None:
        """Stop running processes no resource records (a start cut short by a crash)."""
        known = await self._db(records.recorded_processes)
        for handle in await self.backend.adopt():
            if handle_identity(handle) not in known:
                log.warning(
                    "stopping orphan process %s of %s",
                    handle.get("name"),
                    handle.get("resource_id"),
                )
                await self.backend.stop(handle)

    # -- one resource -------------------------------------------------------------------

    async def reconcile(self, resource_id: str) -> None:
        """One pass for one resource; raises on failure (the caller backs off)."""
        resource = await self._db(records.load_resource, resource_id)
        if resource is None:
            return
        if resource.next_attempt_at is not None and resource.next_attempt_at > utcnow():
            return  # backing off; the resync brings it back when due
        observed = {p.name: await self._observe(p) for p in resource.processes}
        if resource.target == Target.RUNNING:
            await self._run(resource, observed)
        else:
            await self._halt(resource, observed)

    async def _observe(self, process: Process) -> Observed:
        if process.handle is None:  # crashed before the backend reported anything
            state = ProcessState(running=False)
        elif process.state == Phase.EXITED:
            state = ProcessState(running=False, exit_code=process.exit_code)
        else:
            state = await self.backend.status(process.handle)
        return Observed(
            process.name,
            process.spec_hash,
            process.handle,
            process.cluster_address,
            state,
            interrupted=process.state == Phase.STARTING,
            queued=process.state == Phase.QUEUED,
        )

    async def _halt(self, resource: Resource, observed: dict[str, Observed]) -> None:
        running = [o for o in observed.values() if o.state.running or o.state.waiting]
        verb = "delete" if resource.target == Target.DELETED else "stop"
        why = resource.target_reason if resource.target == Target.STOPPED else ""
        if running:
            stopping = why or f"{verb} requested"
            await self._db(self._set_status, resource.id, Status.STOPPING, stopping)
        await self._stop(resource.id, running)
        if resource.type == "job":  # its open runs end here (with its logs' handle)
            ended = why or f"{verb} requested"
            await self._db(self._close_runs, resource.id, RunStatus.STOPPED, ended)
        if resource.target == Target.DELETED:
            await self.backend.forget(resource.id)  # fails → retried: nothing is left behind
            await self._db(records.delete_resource, resource.id)
            self.tokens_revoked()
            log.info(
                "deleted %s %s/%s (%s)",
                resource.type,
                resource.owner,
                resource.name,
                resource.id[:8],
            )
            return
        if resource.type == "job" and resource.status in FINISHED and (not running):
            if resource.observed_generation != resource.generation:  # settled: resync skips
                await self._db(records.mark_observed, resource.id, resource.generation)
            return  # a finished job keeps its result
        await self._db(records.forget_processes, resource.id, list(observed))
        await self._db(records.reset_workers, resource.id)
        await self._db(self._set_status, resource.id, Status.STOPPED, why or "stopped by request")
        await self._db(records.mark_observed, resource.id, resource.generation)

    async def _run(self, resource: Resource, observed: dict[str, Observed]) -> None:
        recipe = parse_recipe(resource.recipe)
        cluster = recipe.cluster
        engine = engine_of(cluster.engine) if cluster is not None else None
        workers = await self._db(records.worker_set, resource.id, cluster)
        runs = await self._db(self._run_processes, resource) if resource.type == "job" else {}
        jobs = list(runs) or None  # a job process per open run (none open: the one "job")
        desired = planned_processes(recipe, self.settings.instance_types, workers, jobs)
        # A start the control plane did not see through (it was killed meanwhile) is
        # undone: the process may live, but its address and readiness are unknown.
        interrupted = [o for o in observed.values() if o.interrupted]
        # A job's program starts with its process (it has nothing to wait for): one whose
        # start was cut short is adopted, never run twice; if it ended meanwhile, its
        # exit is recorded below as any job's.
        for job in [o for o in interrupted if o.handle and _adoptable(o, desired)]:
            assert job.handle is not None
            ports = await self._db(records.ports_of, resource.id, job.name)
            await self._record_started(
                resource.id, engine, desired[job.name], ports, job.handle, job.cluster_address
            )
            observed[job.name] = replace(job, interrupted=False)
            interrupted.remove(job)
        if interrupted:
            await self._stop(resource.id, interrupted)
            await self._db(records.forget_processes, resource.id, [o.name for o in interrupted])
            observed = {n: o for n, o in observed.items() if not o.interrupted}
        observed = await self._finish_queued(resource, engine, desired, observed)
        step: Step | None = None
        if isinstance(recipe, DeploymentRecipe):  # its replicas roll out one by one
            desired, step = await self._rollout(resource, desired, observed)
        ended = [o for n, o in observed.items() if _job_ended(o, desired.get(n))]
        if ended:
            await self._finish_job(resource, observed, ended, runs)
            return
        waiting = {n: o for n, o in observed.items() if o.state.waiting}
        dead = [o for o in observed.values() if not o.state.running and not o.state.waiting]
        alive = {n: o for n, o in observed.items() if o.state.running}
        if dead:
            await self._stop(resource.id, dead)  # sweeps what the dead process left
            await self._db(records.forget_processes, resource.id, [o.name for o in dead])
            unexpected = [o for o in dead if o.name in desired]
            if unexpected and resource.status in (Status.STARTING, *SERVING):
                what = ", ".join(
                    f"{o.name} (exit code {o.state.exit_code}"
                    + (f"; {o.state.reason})" if o.state.reason else ")")
                    for o in unexpected
                )
                died = Degraded if _up(resource, desired, alive) else ProcessDied
                raise died(f"{what} exited unexpectedly")
        current = {**alive, **waiting}
        kept = step.keep if step is not None else ()  # old replicas serving until replaced
        outdated = [
            o
            for n, o in current.items()
            if n not in kept and (n not in desired or o.spec_hash != desired[n].spec_hash)
        ]
        head = engine.head if engine is not None else None
        if (
            head in desired
            and head not in waiting
            and (head not in alive or alive[head] in outdated)
        ):
            # A new head means a new address: everything attached must restart.
            outdated += [o for n, o in current.items() if n != head and o not in outdated]
        elif head is not None and head in alive:
            address = await self._cluster_address(resource.id, engine)
            outdated += [
                o
                for o in current.values()
                if o.cluster_address not in (None, address) and o not in outdated
            ]
        if outdated:
            await self._retire(
                resource.id, engine, alive, [o.name for o in outdated if o.name not in desired]
            )
            if step is not None:  # no new request goes to them; those under way finish
                await self.serving.drain(resource.id, [o.name for o in outdated], DRAIN_SECONDS)
            await self._stop(resource.id, outdated)
            await self._db(records.forget_processes, resource.id, [o.name for o in outdated])
            for process in outdated:
                alive.pop(process.name, None)
                waiting.pop(process.name, None)
        missing = [p for n, p in desired.items() if n not in alive and n not in waiting]
        # Up: only workers are missing, so the resource serves while they start.
        up = _up(resource, desired, alive)
        # Waiting with its essential processes running, it serves: degraded, not pending.
        waits = Status.DEGRADED if _essentials_run(desired, alive) else Status.PENDING
        queued = "; ".join(
            f"{n} is queued in {self.backend.name}: {o.state.waiting}" for n, o in waiting.items()
        )
        if not missing and queued:
            await self._db(self._set_status, resource.id, waits, queued)
            await self._db(records.mark_observed, resource.id, resource.generation)
            return
        if not missing:
            await self._running(resource, len(desired), bool(outdated), step)
            return
        # What fits now starts (the essential processes first, then workers in order);
        # the rest waits, pending, and starts once there is room.
        startable, shortage = await self._db(self._placeable, resource.owner, missing)
        if not startable:
            await self._db(self._set_status, resource.id, waits, shortage)
            await self._db(records.mark_observed, resource.id, resource.generation)
            return
        missing = startable
        names = ", ".join(p.name for p in missing)
        if not up:
            await self._db(self._set_status, resource.id, Status.STARTING, f"starting {names}")
        elif resource.status == Status.DEGRADED:
            await self._db(self._set_status, resource.id, Status.DEGRADED, f"starting {names}")
        try:
            waiting_now = await self._start_all(resource, engine, missing)
        except Exception as exc:
            if up:  # a worker that will not start leaves the rest serving
                raise Degraded(str(exc) or repr(exc)) from exc
            raise
        waiting_now = "; ".join(why for why in (waiting_now, queued, shortage) if why)
        if waiting_now:
            running = await self._db(records.running_names, resource.id)
            essential = [n for n, planned in desired.items() if planned.essential]
            waits = Status.DEGRADED if all(n in running for n in essential) else Status.PENDING
            await self._db(self._set_status, resource.id, waits, waiting_now)
            await self._db(records.mark_observed, resource.id, resource.generation)
            return
        await self._running(resource, len(desired), True, step)

    async def _rollout(
        self, resource: Resource, desired: dict[str, PlannedProcess], observed: dict[str, Observed]
    ) -> tuple[dict[str, PlannedProcess], Step]:
        """The replicas of a deployment that may run now, and the rollout's step. Replicas
        that failed their health check are stopped first, and Degraded raised saying so
        (a new version's failure stops its rollout: the old replicas keep serving)."""
        running = [n for n, o in observed.items() if is_replica(n) and o.state.running]
        step = rollout_step(list(desired), running, self.serving.health(resource.id))
        if step.failed:
            why = "; ".join(self.serving.problem(resource.id, n) for n in step.failed)
            await self._stop(resource.id, [observed[n] for n in step.failed])
            await self._db(records.forget_processes, resource.id, list(step.failed))
            if step.keep and any(n in desired for n in step.failed):  # a new version's
                raise Degraded(
                    f"rollout stopped: {why}; {len(step.keep)} replica(s) of the previous "
                    "version keep serving"
                )
            raise Degraded(f"{why}; replacing it")
        return {n: desired[n] for n in step.run}, step

    async def _running(
        self, resource: Resource, count: int, changed: bool, step: Step | None
    ) -> None:
        """Record ``resource`` as running its ``count`` processes; a deployment as running
        while a replica is healthy (before: starting; none healthy any more: degraded),
        saying how its rollout stands."""
        if step is None or not step.waiting:
            await self._db(self._mark_running, resource.id, resource.generation, count, changed)
            return
        health = self.serving.health(resource.id)
        if any(h == Health.HEALTHY for h in health.values()):
            status = Status.RUNNING
        else:
            status = Status.DEGRADED if resource.status in SERVING else Status.STARTING
        await self._db(self._set_status, resource.id, status, step.waiting)

    async def _cluster_address(self, resource_id: str, engine: Engine | None) -> str | None:
        if engine is None:
            return None
        head = await self._db(records.running_head, resource_id, engine.head)
        return engine.address(head[1]) if head is not None else None

    async def _start_all(
        self, resource: Resource, engine: Engine | None, missing: list[PlannedProcess]
    ) -> str:
        """Start what is missing; why some must wait, or "".

        Every process's ports are chosen first, so the head's address is known
        before it serves: where its engine allows, workers start with it (Dask
        workers wait for their scheduler); otherwise the head starts first and
        the others one after another (Ray nodes join one at a time). Where the
        backend places processes itself (Slurm), the head's address is known
        only once it has landed: it starts first, and the others once it serves.
        """
        chosen = await asyncio.gather(*(self.backend.reserve_ports(p.ports) for p in missing))
        ports = {p.name: numbers for p, numbers in zip(missing, chosen, strict=True)}
        head = next((p for p in missing if p.head), None)
        rest = [p for p in missing if not p.head]
        secure = engine is not None and engine.secured(self.settings.dask_tls)
        place = Place(
            head_host=self.backend.peer_host(engine.head) if engine is not None else "",
            head_ports={},
            secure=secure,
            dashboard_prefix=dashboard_path(resource.id),
            jupyter_prefix=jupyter_path(resource.id),
        )
        address = None
        if head is not None and engine is not None:
            place = replace(place, head_ports=ports[head.name])
            if not self.backend.allocates:
                host = self.backend.public_host
                address = engine.address(endpoints_of(head, ports[head.name], host, secure))
        elif engine is not None:
            running = await self._db(records.running_head, resource.id, engine.head)
            if running is not None:
                head_ports, endpoints, handle = running
                place = replace(place, head_ports=head_ports)
                place = replace(place, head_host=self._landed(handle) or place.head_host)
                address = engine.address(endpoints)
        order = ([head] if head is not None else []) + rest
        results: list[Any] = []
        head_start: asyncio.Task[Handle] | None = None
        if head is not None and engine is not None and self.backend.allocates:
            # Where the head lands decides its address: the others start once it has
            # landed (with it, where the engine allows; else once it serves).
            landed: asyncio.Future[Handle] = asyncio.get_running_loop().create_future()
            head_start = asyncio.create_task(
                self._start_one(resource, engine, head, ports[head.name], place, None, landed)
            )
            await asyncio.wait({head_start, landed}, return_when=asyncio.FIRST_COMPLETED)
            if not engine.starts_together or not landed.done():
                try:
                    handle = await head_start
                except Unplaceable as exc:
                    return str(exc)
                head_start = None
            else:
                handle = landed.result()
            host = self._landed(handle) or self.backend.public_host
            place = replace(place, head_host=host)
            address = engine.address(endpoints_of(head, ports[head.name], host, secure))
            order = rest
        if engine is None or engine.starts_together:
            starts: list[Awaitable[Handle]] = [
                self._start_one(resource, engine, p, ports[p.name], place, address) for p in order
            ]
            if head_start is not None:  # still starting: its outcome counts with theirs
                starts.insert(0, head_start)
            results = await asyncio.gather(*starts, return_exceptions=True)
        else:  # one after another: a node joins once the one before it has
            for planned in order:
                try:
                    await self._start_one(
                        resource, engine, planned, ports[planned.name], place, address
                    )
                except Exception as exc:
                    results.append(exc)
                    if planned.head:
                        break  # nothing to join
        errors = [r for r in results if isinstance(r, BaseException)]
        failures = [e for e in errors if not isinstance(e, Unplaceable)]
        if failures:
            raise failures[0]
        return "; ".join(str(e) for e in errors)

    def _landed(self, handle: Handle | None) -> str | None:
        """Where the process of ``handle`` landed, where the backend placed it itself."""
        return self.backend.landed(handle) if handle is not None else None

    async def _finish_queued(
        self,
        resource: Resource,
        engine: Engine | None,
        desired: dict[str, PlannedProcess],
        observed: dict[str, Observed],
    ) -> dict[str, Observed]:
        """``observed`` after seeing through the start of queued processes the backend now
        runs (those still asked for as they are); one that fails to serve is dead."""
        finished = dict(observed)
        for name, seen in observed.items():
            planned = desired.get(name)
            if not (seen.queued and seen.state.running and seen.handle is not None):
                continue
            if planned is None or planned.spec_hash != seen.spec_hash:
                continue  # outdated: stopped below

            async def checkpoint(handle: Handle, name: str = name) -> None:
                await self._db(records.checkpoint, resource.id, name, handle)

            try:
                handle = await self.backend.finish_start(seen.handle, checkpoint)
            except Exception as exc:
                ended = ProcessState(running=False, reason=str(exc) or repr(exc))
                finished[name] = replace(seen, state=ended, queued=False)
                continue
            ports = await self._db(records.ports_of, resource.id, name)
            await self._record_started(
                resource.id, engine, planned, ports, handle, seen.cluster_address
            )
            finished[name] = replace(seen, handle=handle, queued=False)
        return finished

    async def _record_started(
        self,
        resource_id: str,
        engine: Engine | None,
        planned: PlannedProcess,
        ports: dict[str, int],
        handle: Handle,
        address: str | None,
    ) -> None:
        """Record ``planned`` as serving: its endpoints where it landed, and where that is."""
        secure = engine is not None and engine.secured(self.settings.dask_tls)
        host = self._landed(handle) or self.backend.public_host
        endpoints = endpoints_of(planned, ports, host, secure)
        await self._db(
            records.mark_started,
            resource_id,
            planned.name,
            endpoints,
            None if planned.head else address,
            handle.get("node"),
            handle.get("gpus") if self.backend.allocates else None,
        )

    def _spec(
        self,
        resource: Resource,
        engine: Engine | None,
        planned: PlannedProcess,
        ports: dict[str, int],
        place: Place,
        secret: str,
        gpus: list[str],
        run: int | None = None,
    ) -> ProcessSpec:
        """The backend's view of a planned process: its launch, token, addresses and GPUs
        (and a job's, the output folder of its run ``run``)."""
        launch = launch_of(planned, ports, place, jupyter_token(self.key, resource.id))
        env = {
            **planned.env,
            "TITAN_URL": self.settings.api_url,
            "TITAN_TOKEN": secret,
            "TITAN_RESOURCE": resource.key,
            "TITAN_TELEMETRY_INTERVAL": str(self.settings.telemetry_interval_seconds),
            "TITAN_TELEMETRY_PUSH_SECONDS": str(self.settings.telemetry_push_seconds),
            **launch.env,
        }
        if run is not None:  # a job's run: its number (its outputs go to runs/<number>)
            env["TITAN_JOB_RUN"] = str(run)
        if planned.attached and not planned.engine and engine is not None and place.head_ports:
            env.update(engine.attach(place.head_ports, place.head_host, place.secure))
        return ProcessSpec(
            resource_id=resource.id,
            name=planned.name,
            role=planned.role,
            argv=launch.argv,
            env=env,
            published=launch.published,
            ready_port=launch.ready_port,
            ready_text=launch.ready_text,
            telemetry=launch.telemetry,
            home=launch.home,
            cpu=planned.cpu,
            memory_bytes=planned.memory_bytes,
            gpus=gpus,
            gpu_count=planned.gpu,
            scheduling=planned.scheduling,
            image=planned.image,
            working_directory=planned.working_directory,
            start_script=planned.start_script,
            folders=mounts(self.settings, resource.owner, planned.folders),
            output_dir=(
                str(
                    outputs_folder(
                        self.settings.outputs_dir,
                        resource.owner,
                        resource.type,
                        resource.name,
                        run,
                    )
                )
                if planned.role == "job"
                else None
            ),
            labels={
                "owner": resource.owner,
                "resource": resource.key,
                "generation": str(resource.generation),
            },
        )

    async def _start_one(
        self,
        resource: Resource,
        engine: Engine | None,
        planned: PlannedProcess,
        ports: dict[str, int],
        place: Place,
        address: str | None,
        landed: asyncio.Future[Handle] | None = None,
    ) -> Handle:
        """Start ``planned``; its handle once it serves. Waiting if the backend queued it.
        ``landed`` gets the first handle that says where it runs (a backend that places
        processes itself knows that before the process serves)."""
        async with self._allocating:  # one allocation at a time: no GPU is handed out twice
            secret, gpus, values, files = await self._db(
                self._prepare_process, resource.id, engine, planned, ports
            )
        run = None
        if planned.role == "job":  # the run it is the job process of: its outputs' folder
            run = await self._db(job_runs.run_number, resource.id, planned.name)
        spec = self._spec(resource, engine, planned, ports, place, secret, gpus, run)
        spec = with_secrets(spec, planned.secrets, values, files)
        if self.backend.shares_host:  # Forbidden (no account mapped) fails the start
            account = await self._db(
                run_as, self.settings.os_accounts, resource.owner, resource.created_by
            )
            spec = replace(spec, account=account)

        async def checkpoint(handle: Handle) -> None:
            await self._db(records.checkpoint, resource.id, planned.name, handle)
            if landed is not None and not landed.done() and self._landed(handle):
                landed.set_result(handle)

        try:
            started = await self.backend.start(spec, checkpoint)
        except Queued as queued:  # the backend's scheduler holds it: seen through later
            await self._db(
                records.mark_queued, resource.id, planned.name, None if planned.head else address
            )
            raise Waiting(f"{planned.name} is queued in {self.backend.name}: {queued}") from None
        except BaseException:
            handle = await self._db(records.handle_of, resource.id, planned.name)
            if handle is not None:  # clean up what the failed start left
                await self.backend.stop(handle)
            await self._db(records.forget_processes, resource.id, [planned.name])
            raise
        await self._record_started(resource.id, engine, planned, ports, started.handle, address)
        return started.handle

    async def _retire(
        self,
        resource_id: str,
        engine: Engine | None,
        alive: dict[str, Observed],
        names: list[str],
    ) -> None:
        """Let the cluster hand over the work and data of workers about to stop (best
        effort)."""
        leaving = [n for n in names if is_worker(n)]
        if engine is None or not leaving or engine.head not in alive:
            return
        if not alive.keys() - {engine.head, *leaving}:
            return  # nobody to hand the data to
        head = await self._db(records.running_head, resource_id, engine.head)
        if head is None:
            return
        try:
            async with await self.connections.calls(resource_id, engine, head[1]) as cluster:
                await cluster.retire(leaving, timeout=30)
        except Exception as exc:  # best effort: the workers stop either way
            log.warning("could not retire %s gracefully (%r); stopping them", leaving, exc)

    async def _finish_job(
        self,
        resource: Resource,
        observed: dict[str, Observed],
        ended: list[Observed],
        runs: dict[str, int],
    ) -> None:
        """Record how the runs of the ``ended`` job processes ended. Once no other run goes
        on (``runs``: the open runs' processes), the job has finished: all it runs stops
        (its cluster) and keeps its result; else the runs going on are seen to at once."""
        names = {o.name for o in ended}
        last = {runs[n] for n in names if n in runs} >= set(runs.values())
        if last:
            await self._stop(resource.id, list(observed.values()))
            others = [name for name in observed if name not in names]
            await self._db(records.forget_processes, resource.id, others)
            await self._db(records.reset_workers, resource.id)
        for job in ended:
            await self._db(
                self._record_job_exit,
                resource.id,
                resource.generation,
                job.state.exit_code,
                job.state.reason,
                job.name,
            )
        if not last:
            self.wake(resource.id)

    async def _stop(self, resource_id: str, processes: list[Observed]) -> None:
        handles = [o.handle for o in processes if o.handle is not None]
        await asyncio.gather(*(self.backend.stop(h) for h in handles))
        await self._db(records.revoke_tokens, resource_id, [o.name for o in processes])
        self.tokens_revoked()

    # -- database steps (run in a thread) ----------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await in_transaction(self.sessions, fn, *args)

    def _allocate(self, session: Session, request: Request, owner: str) -> list[str]:
        """The GPUs ``request`` gets; Unplaceable if it passes ``owner``'s quota or does not fit."""
        held = holdings(session)
        check_allocation(session, owner, request, self.settings.default_quota, held)
        if self.backend.allocates:  # it binds GPUs itself; until it says which, these count
            return [f"unbound-{index}" for index in range(request.gpus + len(request.shares))]
        assert self.inventory is not None, "start() records the inventory first"
        return place(self.inventory, held, request, self.overcommit)

    def _placeable(
        self, session: Session, owner: str, missing: list[PlannedProcess]
    ) -> tuple[list[PlannedProcess], str]:
        """The part of ``missing`` that fits now, and why the rest waits ("" if all fit).

        The essential processes fit together or nothing starts; then workers, in order,
        as many as fit beside them.
        """
        essential = [p for p in missing if p.essential]
        try:
            if essential:
                self._allocate(session, records.request_of(*essential), owner)
        except Unplaceable as exc:
            return [], str(exc)
        chosen = list(essential)
        for worker in (p for p in missing if not p.essential):
            try:
                self._allocate(session, records.request_of(*chosen, worker), owner)
            except Unplaceable as exc:
                left = [p.name for p in missing if p not in chosen]
                return chosen, f"{', '.join(left)} {exc}"  # "worker-2 waiting for 4 CPUs..."
            chosen.append(worker)
        return chosen, ""

    def _prepare_process(
        self,
        session: Session,
        resource_id: str,
        engine: Engine | None,
        planned: PlannedProcess,
        ports: dict[str, int],
    ) -> tuple[str, list[str], list[str], dict[str, str]]:
        """The process recorded with its ports and allocation: its token, GPUs, secret
        values and files (its cluster's credentials where it belongs to or uses one)."""
        secret, gpus = records.prepare_process(session, resource_id, planned, ports, self._allocate)
        resource = session.get(Resource, resource_id)
        owner = resource.owner if resource else ""
        refs = [SecretRef(**ref) for ref in planned.secrets]
        values = secret_values(session, self.vault, owner, refs)
        ensure_mounted(self.settings, owner, planned.folders)
        files = {}
        uses_cluster = planned.engine or planned.attached
        if engine is not None and uses_cluster and engine.secured(self.settings.dask_tls):
            credentials = cluster_credentials(session, self.vault, resource_id, engine)
            files = engine.secret_files(credentials)
        return secret, gpus, values, files

    def _set_status(self, session: Session, resource_id: str, status: Status, reason: str) -> None:
        resource = session.get(Resource, resource_id)
        if resource is not None:
            set_status(session, resource, status, reason)

    def _mark_running(
        self, session: Session, resource_id: str, generation: int, count: int, changed: bool
    ) -> None:
        resource = session.get(Resource, resource_id)
        if resource is None:
            return
        resource.observed_generation = generation
        if resource.status != Status.RUNNING or changed:
            set_status(session, resource, Status.RUNNING, f"{count} process(es) running")
        elif resource.failures:
            resource.failures = 0  # it stayed up for a whole resync: healthy again
            resource.next_attempt_at = None

    def _record_failure(
        self, session: Session, resource_id: str, message: str, status: Status = Status.FAILED
    ) -> None:
        """Back off before the next attempt and show ``status`` (failed, or degraded while
        the resource still serves) with ``message`` and the delay as the reason."""
        resource = session.get(Resource, resource_id)
        if resource is None:
            return
        resource.failures += 1
        delay = min(
            self.settings.backoff_base_seconds * 2 ** (resource.failures - 1),
            self.settings.backoff_max_seconds,
        )
        resource.next_attempt_at = utcnow() + timedelta(seconds=delay)
        first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
        set_status(session, resource, status, f"{first_line}; retrying in {delay:.0f}s")

    def _record_job_exit(
        self,
        session: Session,
        resource_id: str,
        generation: int,
        code: int | None,
        reason: str = "",
        name: str = job_runs.JOB,
    ) -> None:
        """Close the run whose job process ``name`` exited with ``code``; once no other
        run goes on, the job is done (succeeded or failed, as that run)."""
        resource = records.lock_resource(session, resource_id)  # no run begins meanwhile
        if resource is None:
            return
        resource.observed_generation = generation
        process = next((p for p in resource.processes if p.name == name), None)
        if process is None or process.spec_hash == job_runs.REPLACED:
            return  # a newer run replaced it meanwhile: that run is not this one's to end
        if process.state != Phase.EXITED:
            process.state, process.exit_code, process.finished_at = Phase.EXITED, code, utcnow()
        seconds = ((process.finished_at or utcnow()) - process.started_at).total_seconds()
        duration = f" after {seconds:.1f}s"
        why = f": {reason}" if reason else ""
        exited = f"job exited with code {code}{duration}{why}"
        if code is None:  # nothing says how it ended: its process vanished
            outcome = RunStatus.LOST
        else:
            outcome = RunStatus.SUCCEEDED if code == 0 else RunStatus.FAILED
        job_runs.close_run(session, resource, outcome, exited, code, process=name)
        if job_runs.open_run(session, resource.id) is not None:
            return  # other runs go on (concurrency_policy Allow): so does the job
        if resource.target != Target.RUNNING or resource.generation != generation:
            return  # changed meanwhile (deleted, stopped, re-applied): the next pass decides
        resource.target = Target.STOPPED
        status = Status.SUCCEEDED if code == 0 else Status.FAILED
        set_status(session, resource, status, exited)

    def _run_processes(self, session: Session, resource: Resource) -> dict[str, int]:
        """The job processes of ``resource``'s open runs, with their runs' numbers."""
        return job_runs.run_processes(session, resource.id, job_runs.allows(resource.recipe))

    def _close_runs(
        self, session: Session, resource_id: str, status: RunStatus, reason: str
    ) -> None:
        """End the job's open runs (it stops, or is deleted) with ``status`` and ``reason``."""
        resource = records.lock_resource(session, resource_id)  # no run begins meanwhile
        # A run begun since this pass read the resource (it runs again) is not this one.
        if resource is not None and resource.target != Target.RUNNING:
            job_runs.close_runs(session, resource, status, reason)


def _job_ended(job: Observed, planned: PlannedProcess | None) -> bool:
    """Whether ``job`` is a job process that ended while its run goes on (or, with none
    open, as the recipe asks for it)."""
    return (
        planned is not None
        and planned.role == "job"
        and not job.state.running
        and not job.state.waiting
        and job.spec_hash == planned.spec_hash
    )


def _adoptable(job: Observed, desired: dict[str, PlannedProcess]) -> bool:
    """Whether a job process whose start the control plane did not see through is the
    one its recipe asks for (and so goes on, or has ended, rather than run again)."""
    planned = desired.get(job.name)
    return (
        job.handle is not None
        and planned is not None
        and planned.role == "job"
        and planned.spec_hash == job.spec_hash
    )


def _up(resource: Resource, desired: dict[str, PlannedProcess], alive: dict[str, Observed]) -> bool:
    """Whether ``resource`` was up and every essential process it asks for still runs as
    asked (only workers are missing or outdated): it stays up while they are replaced."""
    return resource.status in SERVING and _essentials_run(desired, alive)


def _essentials_run(desired: dict[str, PlannedProcess], alive: dict[str, Observed]) -> bool:
    """Whether every essential process ``desired`` asks for runs as asked."""
    return all(
        name in alive and alive[name].spec_hash == planned.spec_hash
        for name, planned in desired.items()
        if planned.essential
    )


class Waiting(Unplaceable):
    """A process the backend's own scheduler queued: the resource waits, it has not failed."""


class ProcessDied(Exception):
    """A process of a running resource exited without being asked to."""


class Degraded(Exception):
    """Workers of an up resource died or would not start while its essential processes
    run: it is degraded, not failed, and they are replaced after the backoff."""
