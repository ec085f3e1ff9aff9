"""``create_app(settings)``: the FastAPI application, its lifespan and error mapping."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import (
    alerts,
    audit,
    dashboards,
    deploy,
    folders,
    groups,
    health,
    images,
    jupyter,
    nodes,
    quotas,
    recipes,
    resources,
    secrets,
    telemetry,
    users,
)
from service.api.answers.base import ERRORS
from service.backends.base import Backend
from service.backends.local import LocalBackend
from service.body_check import JsonBodyCheck
from service.config import Settings
from service.console.routes import add_console, error_page, wants_page
from service.core.capacity.quotas import QuotaService
from service.core.capacity.usage import UsageService
from service.core.control.data_dir import make_private
from service.core.control.health_checks import HealthChecker
from service.core.control.idle import IdleReclaim
from service.core.control.reconciler import Reconciler
from service.core.control.schedules import Scheduler
from service.core.control.state import Phase
from service.core.identity.audit import AuditLog, AuditService
from service.core.identity.auth import Authenticator, bootstrap_admin, server_key
from service.core.identity.groups import GroupService
from service.core.identity.tokens import TokenService
from service.core.identity.users import UserService
from service.core.sharing.folders import FolderService
from service.core.sharing.image_registry import ImageService
from service.core.sharing.secrets import SecretService, vault_of
from service.core.workloads.cluster_credentials import ClusterAccess
from service.core.workloads.listing import ResourceListing
from service.core.workloads.resources import ResourceService
from service.core.workloads.runs import RunService
from service.core.workloads.serving import ServingTable
from service.database.db import make_engine, migrate, session_factory
from service.database.models import Process
from service.errors import InvalidInput, PayloadTooLarge, TitanError
from service.json_values import shown
from service.monitoring.deployment_metrics import reporter
from service.monitoring.monitor import Monitor
from service.monitoring.prometheus import ApiTimer, ControlPlaneMetrics
from service.services import Titan

log = logging.getLogger(__name__)


def make_backend(settings: Settings) -> Backend:
    """The backend the settings name."""
    if settings.backend == "local":
        return LocalBackend(
            settings.data_dir / "processes",
            start_timeout=settings.start_timeout_seconds,
            stop_timeout=settings.stop_timeout_seconds,
            user_root=settings.user_root,
            pass_environment=settings.pass_environment,
            cpu_shares=settings.user_cpu_shares,
            keep_files=settings.keep_deleted_files,
        )
    if settings.backend == "docker":
        from service.backends.docker import DockerBackend

        return DockerBackend(
            prefix=settings.docker_prefix,
            publish_host=settings.publish_host,
            image=settings.docker_image,
            gpu_image=settings.docker_gpu_image,
            api_url=settings.container_api_url,
            start_timeout=settings.start_timeout_seconds,
            stop_timeout=settings.stop_timeout_seconds,
        )
    if settings.backend == "slurm":
        from service.backends.slurm import SlurmBackend

        defaults = {
            "partition": settings.slurm_partition,
            "account": settings.slurm_account,
            "qos": settings.slurm_qos,
            "time_limit": settings.slurm_time_limit,
        }
        return SlurmBackend(
            settings.data_dir / "processes",
            user_root=settings.user_root,
            python=settings.slurm_python or sys.executable,
            prefix=settings.slurm_job_prefix,
            defaults={k: v for k, v in defaults.items() if v},
            start_timeout=settings.start_timeout_seconds,
            stop_timeout=settings.stop_timeout_seconds,
            queue_wait=settings.slurm_queue_seconds,
            pass_environment=settings.pass_environment,
            keep_files=settings.keep_deleted_files,
        )
    raise ValueError(
        f"TITAN_BACKEND: unknown backend {settings.backend!r}; use 'local', 'docker' or 'slurm'"
    )


def left_running(sessions: sessionmaker[Session]) -> int:
    """How many processes the store records as started and not exited: at shutdown, those
    the control plane leaves running for its next start to adopt."""
    with sessions() as session:
        handles = session.scalars(select(Process.handle).where(Process.state != Phase.EXITED))
        return sum(1 for handle in handles if handle)


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    """The Titan API. Migrations, the first admin token and the reconciler start with it."""
    settings = settings or Settings()
    engine = make_engine(settings.sqlalchemy_url)
    sessions = session_factory(engine)
    chosen = backend or make_backend(settings)
    instruments = ControlPlaneMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(migrate, engine)
        await asyncio.to_thread(make_private, settings, chosen.shares_host)
        secret = await asyncio.to_thread(bootstrap_admin, sessions, settings)
        if secret is not None:
            sys.stderr.write(
                f"\nTitan: first start. Admin token (shown once, saved to "
                f"{settings.admin_token_file}):\n  {secret}\n\n"
            )
        key = await asyncio.to_thread(server_key, settings)
        settings.outputs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # jobs' results
        authenticator = Authenticator(
            sessions, settings.token_cache_seconds, settings.auth_failures_per_minute
        )
        vault = await asyncio.to_thread(vault_of, settings)
        serving = ServingTable()
        reconciler = Reconciler(
            sessions,
            chosen,
            settings,
            key,
            tokens_revoked=authenticator.revoked,
            timed=instruments.reconcile_seconds.observe,
            vault=vault,
            serving=serving,
        )
        image_service = ImageService(sessions, settings)
        resource_service = ResourceService(
            sessions, settings, chosen, reconciler.wake, key, image_service, serving
        )
        monitor = Monitor(sessions, settings, resource_service, reconciler.wake)
        reclaim = IdleReclaim(
            sessions, settings, monitor.activity, monitor.latest, reconciler.wake, monitor.clock
        )
        scheduler = Scheduler(
            sessions,
            settings,
            reconciler.wake,
            resource_service.admitting,
            seen=reconciler.seen,
        )
        health_checks = HealthChecker(
            sessions,
            serving,
            reconciler.wake,
            reporter(monitor),
            lambda: settings.deployment_metrics_seconds,
        )
        http = httpx.AsyncClient(timeout=30)
        app.state.titan = Titan(
            settings=settings,
            resources=resource_service,
            runs=RunService(resource_service),
            listing=ResourceListing(resource_service, sessions),
            users=UserService(sessions, settings, authenticator.revoked, reconciler.wake),
            tokens=TokenService(sessions, authenticator.revoked),
            groups=GroupService(sessions, authenticator.revoked),
            quotas=QuotaService(sessions, settings.default_quota),
            audit=AuditService(sessions),
            secrets=SecretService(sessions, vault),
            images=image_service,
            folders=FolderService(sessions, settings),
            clusters=ClusterAccess(resource_service, vault),
            usage=UsageService(sessions),
            reconciler=reconciler,
            authenticate=authenticator,
            http=http,
            monitor=monitor,
            instruments=instruments,
            serving=serving,
            health_checks=health_checks,
        )
        await reconciler.start()
        health_checks.start()
        await monitor.start(http)
        reclaim.start()
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.close()
            await health_checks.close()
            await reclaim.close()
            await monitor.close()
            await http.aclose()
            await reconciler.close()
            left = await asyncio.to_thread(left_running, sessions)
            log.info(
                "Titan stopping: %d process(es) left running for the next start to adopt", left
            )
            await chosen.close()
            engine.dispose()

    app = FastAPI(
        title="Titan",
        version="0.1.0",
        description="Self-hosted GPU compute: workspaces, Dask and Ray clusters, jobs, by recipe.",
        lifespan=lifespan,
        responses=ERRORS,  # every refusal is an ErrorAnswer, documented once for all routes
    )
    routers = (
        health,
        recipes,
        resources,
        nodes,
        users,
        groups,
        quotas,
        secrets,
        images,
        folders,
        dashboards,
        jupyter,
        deploy,
        telemetry,
        alerts,
        audit,
    )
    for module in routers:
        app.include_router(module.router)
    add_console(app)
    _map_errors(app)
    app.add_middleware(JsonBodyCheck)  # inside AuditLog: refused bodies are audited too
    app.add_middleware(AuditLog, sessions=sessions)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(ApiTimer, metrics=instruments)
    return app


def _map_errors(app: FastAPI) -> None:
    @app.exception_handler(TitanError)
    async def titan_error(request: Request, exc: TitanError) -> Response:
        if wants_page(request):
            return error_page(request, exc)
        return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                "path": shown(".".join(str(part) for part in err["loc"])),
                "message": shown(str(err["msg"]).removeprefix("Value error, ")),
                # Whatever the client sent, echoed so that the answer can always be encoded.
                "value": shown(err.get("input")) if _plain(err.get("input")) else None,
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        error = InvalidInput(message, problems)
        if wants_page(request):  # a console form: the field and the fix on a page
            return error_page(request, error)
        return JSONResponse(error.to_body(), status_code=error.status_code)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        body = {
            "error": {"code": f"http_{exc.status_code}", "message": exc.detail, "details": None}
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:12]
        log.error(
            "request %s %s failed (id %s)",
            request.method,
            request.url.path,
            request_id,
            exc_info=exc,
        )
        message = f"internal error (request id {request_id}); the server log has details"
        body = {"error": {"code": "internal", "message": message, "details": None}}
        return JSONResponse(body, status_code=500)


def _plain(value: object) -> bool:
    return isinstance(value, str | int | float | bool | type(None))


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise PayloadTooLarge(self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request body is over {self.limit} bytes (TITAN_MAX_BODY_BYTES)"

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(PayloadTooLarge(self._message()).to_body(), status_code=413)
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
