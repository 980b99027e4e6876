"""The FastAPI application: API under /api/v1, pages, health checks, problem+json errors."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from fairslot import __version__
from fairslot.bootstrap import Platform, bootstrap
from fairslot.guard.fastapi import install as install_guard
from fairslot.guard.service import Guard
from fairslot.monitoring.live import server_monitoring
from fairslot.monitoring.publish import PlatformPublisher
from fairslot.scheduler import ConsortiumLoop, Scheduler
from fairslot.storage.database import side_engine
from fairslot.web import metrics
from fairslot.web.access_log import AccessLog, AccessLogMiddleware, GuardEventLog
from fairslot.web.api import consortium, dev, identity, me, monitor, public, rounds, staff
from fairslot.web.apidocs import install_api_docs
from fairslot.web.pages import install_pages
from fairslot.web.problems import Problem, install_problem_handlers

__all__ = ["create_app"]

log = logging.getLogger("fairslot.web")


def create_app(platform: Platform | None = None) -> FastAPI:
    platform = platform or bootstrap()
    access_log = AccessLog(platform.write_events, platform.clock)
    guard = Guard(platform.settings, clock=platform.clock, randomness=platform.random,
                  sink=GuardEventLog(access_log))
    # The platform's committed events (and the access and guard log) go to the monitor:
    # a thread of this server in embedded mode, the Redis stream in production.
    # Its store is beside the requests' pool: the console's and the API's routes read and
    # change alerts while their request holds one of the pool's connections.
    monitoring = server_monitoring(platform.settings, clock=platform.clock,
                                   db=side_engine(platform.engine), book=guard.decisions)
    platform.on_commit[:] = [hook for hook in platform.on_commit
                             if not isinstance(hook, PlatformPublisher)
                             and hook is not metrics.count_events]
    platform.on_commit += [monitoring.publisher, metrics.count_events]
    for watcher in (monitoring.monitor, monitoring.hand):
        if watcher is not None:
            watcher.observer = metrics.observe_alerts

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        access_log.start()
        await run_in_threadpool(monitoring.start)  # reads decisions from the database
        scheduler = Scheduler(platform) if platform.settings.scheduler else None
        if scheduler:
            scheduler.start()
        if platform.consortium is not None:
            # Before the first request: read on a request's first look-up, the list would
            # take a second connection while the request holds its own.
            try:
                await run_in_threadpool(platform.consortium.load)
            except Exception:  # served anyway; the consortium loop's first tick reads it
                log.exception("loading the consortium's list failed")
        shared = ConsortiumLoop(platform) if platform.consortium is not None else None
        if shared:
            shared.start()
        try:
            yield
        finally:
            if shared:
                shared.stop()
            if scheduler:
                scheduler.stop()
            access_log.stop()
            await run_in_threadpool(monitoring.stop)
            await guard.close()

    app = FastAPI(
        lifespan=lifespan,
        title="fairslot",
        version=__version__,
        description="Fair release of scarce hospital appointments. Errors are "
        "application/problem+json with a stable `code`.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served offline below (fairslot.web.apidocs)
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.access_log = access_log
    app.state.monitoring = monitoring
    # Starlette runs the last added middleware first: the guard resolves client IP and device
    # before the access log reads them on the way out.
    app.add_middleware(AccessLogMiddleware, access_log=access_log)
    install_guard(app, guard)
    install_problem_handlers(app)
    for router in (public.router, me.router, rounds.router, staff.router, consortium.router,
                   dev.router, identity.router, monitor.router):
        app.include_router(router, prefix="/api/v1")
    install_api_docs(app)
    install_pages(app)  # HTML pages and /static, after the problem handlers

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def prometheus(request: Request) -> Response:
        """Prometheus metrics, summed over every worker (multi-process mode)."""
        return metrics.metrics_response(request)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": Problem}})
    async def readyz() -> Any:
        """The process can serve: the database answers; the guard says whether its shared
        state (Redis) is reachable or it is protecting with per-process limits."""
        checks: dict[str, str] = dict(await guard.probe())
        ok = True
        try:
            await run_in_threadpool(platform.ping)
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError:
            checks["database"] = "down"
            ok = False
        body = {"status": "ok" if ok else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    # Problem is referenced by every error response; make sure the schema is registered.
    app.openapi_schema = None
    _original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = _original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema())
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
