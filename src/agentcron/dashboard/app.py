"""`create_app(scheduler, settings)`: the dashboard as a FastAPI application.

One call builds one independent app: routes, auth, WebSocket hub, metrics registry and
caches all hang off the returned app, so several apps (tests, benchmarks) coexist in one
process. The app subscribes to `scheduler.events` while it is served (its lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentcron import __version__
from agentcron.dashboard import auth, views
from agentcron.dashboard.api import DashboardContext, build_router, metrics_response
from agentcron.dashboard.metrics import DashboardMetrics
from agentcron.dashboard.middleware import BodyLimit, JobIdInQuery
from agentcron.dashboard.protocol import QueueSource, SchedulerLike
from agentcron.dashboard.settings import DashboardSettings
from agentcron.dashboard.ws import EventHub
from agentcron.events import Event
from agentcron.tasks import cancel_and_join

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger("agentcron.dashboard")

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    scheduler: SchedulerLike,
    settings: DashboardSettings,
    *,
    queues: QueueSource | None = None,
) -> FastAPI:
    """Build the dashboard for `scheduler` (DESIGN 2.13 surface; see `protocol.py`).

    `queues` lists the queues to show (None: the queues panel says none are wired in).
    """
    if not settings.auth_token:
        raise ValueError("DashboardSettings.auth_token is empty; use auth.ensure_token() first")
    hub = EventHub(
        scheduler.events,
        settings.auth_token,
        max_pending=settings.ws_max_pending,
        auth_timeout_s=settings.ws_auth_timeout_s,
        send_timeout_s=settings.ws_send_timeout_s,
        flush_interval_s=settings.ws_flush_interval_s,
    )
    ctx = DashboardContext(
        scheduler=scheduler,
        settings=settings,
        hub=hub,
        metrics=DashboardMetrics(),
        cache=views.JobStateCache(scheduler),
        index=views.JobIndex(scheduler),
        running=views.RunningTracker(scheduler),
        queues=queues,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # One subscription for everything the dashboard keeps (one delivery task, one
        # buffer); every handler is synchronous and cheap.
        handlers = (
            ctx.running.on_event, ctx.cache.on_event, ctx.index.on_event,
            ctx.metrics.on_event, hub.on_event,
        )  # fmt: skip

        def on_event(event: Event) -> None:
            for handle in handlers:
                try:
                    handle(event)
                except Exception:
                    log.exception("dashboard failed to handle %s", event.type)

        subscription = scheduler.events.subscribe(on_event, max_pending=100_000)
        with contextlib.suppress(Exception):  # a store that is down shows in /api/health
            await ctx.running.resync()
        side = [
            asyncio.create_task(ctx.cache.sweep(), name="dashboard-cache-sweeper"),
            asyncio.create_task(ctx.running.run(), name="dashboard-running-resync"),
        ]
        try:
            yield
        finally:
            for task in side:
                task.cancel()
            for task in side:  # (an error a side task ended with is raised, as before)
                await cancel_and_join(task)
            hub.stop()
            subscription.close()
            for task in tuple(ctx.background):
                task.cancel()

    app = FastAPI(
        title="agentcron dashboard",
        version=__version__,
        description="HTTP API of the agentcron scheduler. Every route but /healthz needs "
        "`Authorization: Bearer <token>`.",
        docs_url=None,  # the Swagger page loads scripts from a CDN; the spec is at /openapi.json
        redoc_url=None,
        # No 307 from `/api/jobs/` (or `/api/jobs/%2F`, the id "/") to `/api/jobs`: a client
        # that follows it would list or delete elsewhere; an unknown address is a JSON 404.
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.dashboard = ctx
    app.include_router(build_router())

    # HEAD as well as GET on the routes without a token (static files answer both): health
    # checkers and proxies probe with HEAD; the server sends the headers without the body.
    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return metrics_response(ctx)

    @app.websocket("/ws")
    async def events_ws(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "There was an error parsing the body": bad input like any other.
            return JSONResponse({"detail": _unreadable_body(exc.__cause__)}, status_code=422)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def bad_input(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _jsonable_errors(exc.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("dashboard error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    # Innermost first: the body cap and the id rewrite run after the token check.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(JobIdInQuery)
    app.middleware("http")(auth.require_token(settings.auth_token))
    csp = auth.content_security_policy(settings.extra_connect_src)
    app.middleware("http")(auth.security_headers(csp))
    return app


def _unreadable_body(cause: BaseException) -> str:
    """Why a request body could not be read as JSON (FastAPI only says that it could not)."""
    if isinstance(cause, RecursionError):
        return "the JSON body is nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not valid UTF-8 JSON text"
    if isinstance(cause, ValueError):  # e.g. an integer of more than 4,300 digits
        return f"the request body could not be read as JSON: {str(cause).split(';')[0]}"
    return f"the request body could not be read as JSON ({type(cause).__name__})"


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        item = {k: v for k, v in dict(err).items() if k in ("loc", "msg", "type")}
        item["loc"] = [str(p) for p in item.get("loc", ())]
        reason = (err.get("ctx") or {}).get("error") if item.get("type") == "json_invalid" else None
        if isinstance(reason, str):  # "JSON decode error" alone does not say what is wrong
            item["msg"] = f"{item['msg']}: {reason} (at character {item['loc'][-1]})"
        out.append(item)
    return out
