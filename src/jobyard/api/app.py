"""`create_app(settings)`: the FastAPI application with its lifespan-owned runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from jobyard import access
from jobyard.api import docs, problems
from jobyard.api.body_guard import BodyGuard
from jobyard.api.deps import storable_params
from jobyard.api.fast_submit import FastSubmit
from jobyard.api.metrics import make_registry
from jobyard.api.routes import (
    artifacts,
    audit,
    events,
    health,
    history,
    jobs,
    pools,
    reruns,
    schedules,
)
from jobyard.api.security_headers import SecurityHeaders
from jobyard.app import Yard
from jobyard.config import Settings
from jobyard.dispatch.group_commit import GroupCommitter
from jobyard.events.factory import make_listener
from jobyard.events.hub import EventHub
from jobyard.gc_freeze import freeze_startup_objects
from jobyard.runtime import Runtime
from jobyard.web import login, posts, views
from jobyard.web.render import WEB_DIR


def create_app(settings: Settings, *, yard: Yard | None = None, host: str | None = None) -> FastAPI:
    """Build the web app; the database and broker connect when the app starts.

    Raises:
        ConfigError: `auth.mode = "open"` while binding an address others can reach (`host`,
            default `web.host`).
    """
    bind = host or settings.web.host
    auth_mode = access.effective_mode(settings, bind)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.open(settings, yard=yard)
        if auth_mode == "keys" and not access.is_loopback(bind):
            try:
                access.ensure_bootstrap_key(runtime)
                access.require_a_key(runtime, bind)
            except BaseException:
                runtime.close()
                raise
        app.state.runtime = runtime
        app.state.metrics = make_registry(runtime)
        hub = EventHub(make_listener(settings.events, settings.queue_prefix))
        hub.start(asyncio.get_running_loop())
        app.state.events = hub
        app.state.submits = GroupCommitter(runtime, asyncio.get_running_loop())
        freeze_startup_objects()
        try:
            yield
        finally:
            app.state.submits.close()
            hub.close()
            runtime.close()

    app = FastAPI(
        title="jobyard",
        version="0.1.0",
        description="Submit, follow and control background jobs.",
        lifespan=lifespan,
        dependencies=[Depends(storable_params)],
        docs_url=None,  # served by `api.docs` from a wheel instead of a CDN
        redoc_url=None,
        openapi_url=None,  # served by `api.docs`, behind the API's authentication
    )
    app.state.auth_mode = auth_mode
    app.add_middleware(FastSubmit)  # inside the guard: bodies are authenticated and capped
    app.add_middleware(BodyGuard, web=settings.web)
    app.add_middleware(SecurityHeaders)
    problems.install(app)
    app.include_router(reruns.router)
    app.include_router(jobs.router)
    app.include_router(artifacts.router)
    app.include_router(audit.router)
    app.include_router(pools.router)
    app.include_router(history.router)
    app.include_router(schedules.router)
    app.include_router(events.router)
    app.include_router(login.router)
    app.include_router(views.router)
    app.include_router(posts.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(health.router)
    docs.install(app)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(app.state.metrics), media_type=CONTENT_TYPE_LATEST)

    return app
