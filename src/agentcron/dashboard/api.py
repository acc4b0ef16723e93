"""The `/api` routes (DESIGN 2.8). Built per app by `build_router()`; no module state.

Errors are JSON `{"detail": ...}`: unknown ids 404, bad input 422, conflicts 409. The
scheduler's own exceptions are mapped by `scheduler_errors()`: `LookupError` -> 404,
`JobConflictError` -> 409, other `ValueError`s (bad cron text, unknown time zone, ...) -> 422,
`StoreError` -> 503.

A route that changes a job (add, edit, remove, pause, resume) answers once the change is in
the store (`require_saved`): the scheduler applies it at once and stores it in the
background, so an answer before the write would acknowledge a change that a stop of the
process could still lose. If the store does not take it within `SAVE_WAIT_S`, the answer
is a 503 that says the change is applied but not saved yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response

from agentcron.config_jobs import config_job_ids, config_job_problem
from agentcron.dashboard import queues, schemas, views
from agentcron.dashboard.metrics import CONTENT_TYPE, DashboardMetrics
from agentcron.dashboard.protocol import QueueLike, QueueSource, SchedulerLike
from agentcron.dashboard.settings import DashboardSettings
from agentcron.dashboard.timeline import TimelineJob, build_timeline
from agentcron.dashboard.views import maybe_await
from agentcron.dashboard.ws import EventHub
from agentcron.models import NodeHeartbeat, RunQuery, RunStatus
from agentcron.store.base import JobConflictError, StoreError
from agentcron.triggers import CronTrigger, coerce_trigger, require_fires_after

__all__ = ["SAVE_WAIT_S", "DashboardContext", "build_router", "get_context"]

log = logging.getLogger("agentcron.dashboard")

JobId = Annotated[str, Path(min_length=1, max_length=200)]
QueueName = Annotated[str, Path(min_length=1, max_length=200)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
CountParam = Annotated[
    bool, Query(description="Also count every matching run (`total`); slower on big logs")
]
StatusName = Literal[
    "scheduled", "running", "succeeded", "failed", "timed_out", "cancelled", "skipped",
    "interrupted",
]  # fmt: skip
#: How long a route that changes a job waits for the change to be in the store, on the
#: scheduler's clock, before it answers 503 (the change stays applied and the scheduler keeps
#: trying to store it). SQLite waits up to its busy timeout (`SQLiteStore.busy_timeout_s`,
#: 10 s by default) for another process's lock before it refuses a write, and the scheduler
#: tries a refused write again after 1 s, then 2 s: 30 s covers about three such tries, and
#: stays under the 60 s after which a reverse proxy (nginx's `proxy_read_timeout`) gives up.
SAVE_WAIT_S = 30.0
#: Newest runs read for the timeline (older ones in the window are left out).
_TIMELINE_RUNS = 20_000
JobStatusName = Literal["active", "paused", "running", "failing", "disabled"]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorOut, "description": "No bearer token"},
    403: {"model": schemas.ErrorOut, "description": "Wrong token"},
    422: {"model": schemas.ErrorOut, "description": "Bad input"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **_ERRORS, 404: {"model": schemas.ErrorOut, "description": "Unknown id"},
}  # fmt: skip
#: Routes that read a queue's jobs: also 503 (the queue's backend cannot be reached).
_QUEUE_READ: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND, 503: {"model": schemas.ErrorOut, "description": "The queue is unavailable"},
}  # fmt: skip
#: Routes that change something: also 409 (stopped scheduler, read-only dashboard) and 503.
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"model": schemas.ErrorOut, "description": "Not possible now (see the message)"},
    503: {"model": schemas.ErrorOut, "description": "The store is unavailable"},
}


@dataclass
class DashboardContext:
    """Everything the routes of one app share (stored on `app.state.dashboard`)."""

    scheduler: SchedulerLike
    settings: DashboardSettings
    hub: EventHub
    metrics: DashboardMetrics
    cache: views.JobStateCache
    index: views.JobIndex
    running: views.RunningTracker
    queues: QueueSource | None = None
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    #: Set when the server stops (`DashboardServer.stop`): a change waiting for the store is
    #: answered at once (503) instead of holding the stop for up to `SAVE_WAIT_S`.
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed: %s", task.get_name(), task.exception())


def get_context(request: Request) -> DashboardContext:
    ctx: DashboardContext = request.app.state.dashboard
    return ctx


Ctx = Annotated[DashboardContext, Depends(get_context)]


@contextlib.asynccontextmanager
async def scheduler_errors(job_id: str | None = None) -> AsyncIterator[None]:
    """Map the scheduler's exceptions to HTTP errors."""
    try:
        yield
    except HTTPException:
        raise
    except JobConflictError as exc:
        raise HTTPException(409, str(exc) or f"job {job_id!r} already exists") from exc
    except LookupError as exc:
        raise HTTPException(404, f"unknown job {job_id!r}") from exc
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc) or type(exc).__name__) from exc
    except StoreError as exc:
        raise HTTPException(503, f"store unavailable: {exc}") from exc
    except RuntimeError as exc:  # e.g. the scheduler is not running
        raise HTTPException(409, str(exc) or type(exc).__name__) from exc


def unsaved_detail(what: str) -> str:
    """The 503 `detail` for a change the scheduler applied but the store has not taken."""
    return (
        f"store unavailable: {what} in the running scheduler but not saved yet; it is saved"
        " when the store is back (the scheduler keeps trying), and lost if the scheduler"
        " stops before then"
    )


async def require_saved(ctx: DashboardContext, what: str) -> None:
    """Return once every change made so far is in the store (`scheduler.flush()`), else 503
    with `unsaved_detail(what)` after `SAVE_WAIT_S` on the scheduler's clock, or at once when
    the server stops. The flush is not cancelled: the scheduler keeps trying the write
    whether or not anyone waits. A scheduler without `flush()` is not waited for."""
    flush = getattr(ctx.scheduler, "flush", None)
    if not callable(flush):
        return
    saving = ctx.spawn(flush(), name="dashboard-save-wait")
    timer = asyncio.ensure_future(ctx.scheduler.clock.sleep(SAVE_WAIT_S))
    closing = asyncio.ensure_future(ctx.closing.wait())
    try:
        await asyncio.wait({saving, timer, closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        closing.cancel()
    if not saving.done():
        raise HTTPException(503, unsaved_detail(what))
    saving.result()  # a flush that failed says why (mapped by `scheduler_errors`)


async def changed(ctx: DashboardContext, job_id: str, what: str) -> None:
    """After a change to `job_id`: drop its cached state and wait until the change is stored
    (`require_saved`; `what` names the change in a 503). Dropped again once stored: a read
    during the wait may have cached the store's state from before the write."""
    ctx.cache.forget(job_id)
    ctx.index.invalidate()
    async with scheduler_errors(job_id):
        await require_saved(ctx, what)
    ctx.cache.forget(job_id)


def _job_or_none(ctx: DashboardContext, job_id: str) -> Any:
    try:
        return ctx.scheduler.job(job_id)
    except LookupError:
        return None


def find_job(ctx: DashboardContext, job_id: str) -> Any:
    try:
        job = ctx.scheduler.job(job_id)
    except LookupError:
        job = None
    if job is None:
        raise HTTPException(404, f"unknown job {job_id!r}")
    return job


async def running_by_job(ctx: DashboardContext) -> dict[str, int]:
    return ctx.running.by_job()


async def summaries(
    ctx: DashboardContext, jobs: Sequence[Any], running: dict[str, int]
) -> list[schemas.JobSummary]:
    now = ctx.scheduler.clock.now()
    out = []
    for job in jobs:
        job_id = views.job_id_of(job)
        state = await ctx.cache.get(job_id, job)
        out.append(views.job_summary(job, state, running.get(job_id, 0), now))
    return out


def _sort_key(job: Any) -> tuple[str, str]:
    return (views.job_name(job).casefold(), views.job_id_of(job))


def node_out(hb: NodeHeartbeat, now: datetime) -> schemas.NodeOut:
    try:
        from agentcron.heartbeat.monitor import view_node

        view = view_node(hb, now)
        status, score = view.status, view.health_score
    except ImportError:  # pragma: no cover - the monitor ships with agentcron
        late = (now - hb.sent_at).total_seconds() - 0.25 * hb.interval_s
        missed = 0 if late < hb.interval_s else int(late // hb.interval_s)
        status = "online" if missed == 0 else "suspect" if missed < 3 else "offline"
        score = None
    return schemas.NodeOut(
        node_id=hb.node_id,
        status=status,
        reported=hb.status,
        health_score=score,
        last_seen=hb.sent_at,
        age=max(0.0, (now - hb.sent_at).total_seconds()),
        sequence=hb.sequence,
        host=hb.host,
        pid=hb.pid,
        version=hb.version,
        platform=hb.platform,
        started_at=hb.started_at,
        interval=hb.interval_s,
    )


async def queue_out(ctx: DashboardContext, name: str, queue: QueueLike) -> schemas.QueueOut:
    counts = {str(k): int(v) for k, v in (await queue.counts()).items()}
    ctx.metrics.set_queue(name, counts)
    is_paused = getattr(queue, "is_paused", None)
    paused = bool(await is_paused()) if callable(is_paused) else bool(counts.get("paused", 0))
    return schemas.QueueOut(name=name, counts=counts, paused=paused)


def find_queue(ctx: DashboardContext, name: str) -> QueueLike:
    queue = ctx.queues.get(name) if ctx.queues is not None else None
    if queue is None:
        raise HTTPException(404, f"unknown queue {name!r}")
    return queue


async def is_read_only(ctx: DashboardContext) -> bool:
    """True on `agentcron dashboard`, whose scheduler is a `StoreObserver`."""
    engine = views.plain(await maybe_await(ctx.scheduler.health()))
    return isinstance(engine, dict) and engine.get("mode") == "read-only"


async def refuse_file_job(ctx: DashboardContext, job_id: str, what: str) -> None:
    """409 for a job `agentcron.toml` defines: the next reload of the file would undo the
    change without a word. Pausing, resuming and running it stay allowed (a pause is kept
    across reloads)."""
    try:
        listed = await config_job_ids(ctx.scheduler.store)
    except StoreError:
        return  # the store will answer the change itself
    if job_id in listed:
        raise HTTPException(409, config_job_problem(job_id, what))


async def queue_to_change(ctx: DashboardContext, name: str, what: str) -> QueueLike:
    """`find_queue`, refused with 409 on a read-only dashboard: like its jobs, its queues
    are changed where the scheduler runs (the page hides those buttons there too)."""
    queue = find_queue(ctx, name)
    if await is_read_only(ctx):
        raise HTTPException(
            409,
            f"this dashboard only reads the store; {what} queue {name!r} from the process"
            f" that runs the scheduler or with `agentcron queue {what}`",
        )
    return queue


def _handler_from(body: schemas.JobCreate) -> Any:
    given = [h for h in (body.command, body.callable, body.http) if h is not None]
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of command, callable or http")
    if body.callable is not None:
        if ":" not in body.callable:
            raise HTTPException(422, 'callable must look like "package.module:function"')
        return body.callable
    import agentcron

    if body.command is not None:
        command_cls = getattr(agentcron, "Command", None)
        if command_cls is None:
            raise HTTPException(422, "command handlers are not available in this build")
        return command_cls(list(body.command))
    http_cls = getattr(agentcron, "Http", None) or getattr(agentcron, "HttpCall", None)
    if http_cls is None:
        raise HTTPException(422, "http handlers are not available in this build")
    assert body.http is not None
    given_fields = body.http.model_dump(by_alias=True, exclude_unset=True)
    return http_cls(**{k: v for k, v in given_fields.items() if v is not None})


def _patched_trigger(job: Any, changes: dict[str, Any]) -> Any:
    """The trigger a PATCH leaves `job` with, as the engine will build it (None when the
    PATCH changes neither the trigger nor the zone of a cron trigger): a new trigger is read
    in the new zone if one is given, else in the job's stored zone; a new zone alone re-reads
    the job's cron expression there."""
    zone = changes.get("timezone") or views.job_timezone(job)
    if "trigger" in changes:
        return coerce_trigger(changes["trigger"], zone)
    current = views.job_trigger(job, {})
    if "timezone" in changes and isinstance(current, CronTrigger):
        return coerce_trigger(current.expr, zone)
    return None


def build_router() -> APIRouter:
    api = APIRouter(prefix="/api", responses=_ERRORS)

    # -- jobs --------------------------------------------------------------------------
    @api.get("/jobs", response_model=schemas.JobPage, summary="List jobs")
    async def list_jobs(
        ctx: Ctx,
        search: Annotated[str | None, Query(max_length=200)] = None,
        tag: Annotated[str | None, Query(max_length=200)] = None,
        status: JobStatusName | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> schemas.JobPage:
        picked = [e for e in ctx.index.entries() if e.matches(search, tag)]
        running = await running_by_job(ctx)
        if status is not None:  # needs every candidate's state; cheap once the cache is warm
            kept = []
            for entry in picked:
                job = _job_or_none(ctx, entry.job_id)
                if job is None:
                    continue
                state = await ctx.cache.get(entry.job_id, job)
                if views.job_status(job, state, running.get(entry.job_id, 0)) == status:
                    kept.append(entry)
            picked = kept
        rows = [_job_or_none(ctx, e.job_id) for e in picked[offset : offset + limit]]
        page = await summaries(ctx, [j for j in rows if j is not None], running)
        return schemas.JobPage(
            items=page, total=len(picked), limit=limit, offset=offset, tags=ctx.index.tags()
        )

    @api.get("/jobs/{job_id}", response_model=schemas.JobDetail, responses=_NOT_FOUND)
    async def get_job(ctx: Ctx, job_id: JobId) -> schemas.JobDetail:
        job = find_job(ctx, job_id)
        running = await running_by_job(ctx)
        state = await ctx.cache.get(job_id, job)
        now = ctx.scheduler.clock.now()
        return await views.job_detail(ctx.scheduler, job, state, running.get(job_id, 0), now)

    @api.post(
        "/jobs", response_model=schemas.JobDetail, status_code=201,
        responses={k: v for k, v in _CHANGE.items() if k != 404},
    )  # fmt: skip
    async def create_job(ctx: Ctx, body: schemas.JobCreate) -> schemas.JobDetail:
        try:
            existing = ctx.scheduler.job(body.id)
        except LookupError:
            existing = None
        if existing is not None:
            raise HTTPException(409, f"a job with id {body.id!r} already exists")
        options: dict[str, Any] = {
            k: v
            for k, v in body.model_dump(exclude={"id", "command", "callable", "http"}).items()
            if v is not None
        }
        async with scheduler_errors(body.id):
            # Without a timezone the job gets the scheduler's default zone: check it there.
            zone = body.timezone or getattr(ctx.scheduler, "timezone", None) or "UTC"
            trigger = coerce_trigger(body.trigger, zone)
            require_fires_after(trigger, ctx.scheduler.clock.now())
            handler = _handler_from(body)  # e.g. Http(**body.http): a TypeError is bad input
            await maybe_await(ctx.scheduler.add_job(body.id, handler=handler, **options))
        await changed(ctx, body.id, f"job {body.id!r} is added")
        return await get_job(ctx, body.id)

    @api.patch("/jobs/{job_id}", response_model=schemas.JobDetail, responses=_CHANGE)
    async def patch_job(ctx: Ctx, job_id: JobId, body: schemas.JobPatch) -> schemas.JobDetail:
        job = find_job(ctx, job_id)
        await refuse_file_job(ctx, job_id, "change")
        changes = body.model_dump(exclude_unset=True)
        if any(v is None for v in changes.values()):
            raise HTTPException(422, "null is not a valid value; leave the field out instead")
        if changes:
            async with scheduler_errors(job_id):
                trigger = _patched_trigger(job, changes)
                if trigger is not None:
                    require_fires_after(trigger, ctx.scheduler.clock.now())
                await maybe_await(ctx.scheduler.update(job_id, **changes))
            await changed(ctx, job_id, f"the change to job {job_id!r} is applied")
        ctx.cache.forget(job_id)
        ctx.index.invalidate()
        return await get_job(ctx, job_id)

    @api.delete("/jobs/{job_id}", response_model=schemas.OkOut, responses=_CHANGE)
    async def delete_job(ctx: Ctx, job_id: JobId) -> schemas.OkOut:
        find_job(ctx, job_id)
        await refuse_file_job(ctx, job_id, "remove")
        async with scheduler_errors(job_id):
            await maybe_await(ctx.scheduler.remove(job_id))
        await changed(ctx, job_id, f"job {job_id!r} is removed")
        return schemas.OkOut(message=f"removed {job_id}")

    @api.post("/jobs/{job_id}/run", response_model=schemas.RunNowOut, responses=_CHANGE)
    async def run_job(
        ctx: Ctx,
        job_id: JobId,
        wait: Annotated[bool, Query(description="Wait for the run and return it")] = False,
    ) -> schemas.RunNowOut:
        find_job(ctx, job_id)
        engine = views.plain(await maybe_await(ctx.scheduler.health()))
        if isinstance(engine, dict) and engine.get("status") == "stopped":
            raise HTTPException(409, "the scheduler is not running; start it to run jobs")
        if wait or await is_read_only(ctx):  # a read-only observer refuses at once, with its reason
            async with scheduler_errors(job_id):
                run = await ctx.scheduler.run_now(job_id)
            return schemas.RunNowOut(job_id=job_id, accepted=True, run=views.run_out(run))
        ctx.spawn(ctx.scheduler.run_now(job_id), name=f"dashboard-run-now:{job_id}")
        return schemas.RunNowOut(job_id=job_id, accepted=True, run=None)

    async def _summary(ctx: DashboardContext, job_id: str) -> schemas.JobSummary:
        job = find_job(ctx, job_id)
        ctx.cache.forget(job_id)
        running = await running_by_job(ctx)
        return (await summaries(ctx, [job], running))[0]

    @api.post("/jobs/{job_id}/pause", response_model=schemas.JobSummary, responses=_CHANGE)
    async def pause_job(
        ctx: Ctx, job_id: JobId, body: Annotated[schemas.PauseRequest | None, Body()] = None
    ) -> schemas.JobSummary:
        find_job(ctx, job_id)
        note = body.note if body is not None else None
        async with scheduler_errors(job_id):
            await maybe_await(ctx.scheduler.pause(job_id, note=note))
        await changed(ctx, job_id, f"job {job_id!r} is paused")
        return await _summary(ctx, job_id)

    @api.post("/jobs/{job_id}/resume", response_model=schemas.JobSummary, responses=_CHANGE)
    async def resume_job(ctx: Ctx, job_id: JobId) -> schemas.JobSummary:
        find_job(ctx, job_id)
        async with scheduler_errors(job_id):
            await maybe_await(ctx.scheduler.resume(job_id))
        await changed(ctx, job_id, f"job {job_id!r} is resumed")
        return await _summary(ctx, job_id)

    # -- runs --------------------------------------------------------------------------
    async def _run_page(ctx: DashboardContext, query: RunQuery, count: bool) -> schemas.RunPage:
        store = ctx.scheduler.store
        # One row more than asked says whether another page exists; counting every
        # matching row is a scan of up to millions of rows, so it is on request only.
        probe = RunQuery(
            job_id=query.job_id, statuses=query.statuses, since=query.since,
            until=query.until, limit=query.limit + 1, offset=query.offset,
        )  # fmt: skip
        if count:
            rows, total = await asyncio.gather(store.list_runs(probe), store.count_runs(query))
        else:
            rows, total = await store.list_runs(probe), None
        return schemas.RunPage(
            items=[views.run_out(r) for r in rows[: query.limit]],
            total=total,
            has_more=len(rows) > query.limit,
            limit=query.limit,
            offset=query.offset,
        )

    @api.get("/jobs/{job_id}/runs", response_model=schemas.RunPage, responses=_NOT_FOUND)
    async def job_runs(
        ctx: Ctx,
        job_id: JobId,
        status: Annotated[list[StatusName] | None, Query()] = None,
        limit: Limit = 50,
        offset: Offset = 0,
        count: CountParam = False,
    ) -> schemas.RunPage:
        find_job(ctx, job_id)
        statuses = tuple(RunStatus(s) for s in status or ())
        query = RunQuery(job_id=job_id, statuses=statuses, limit=limit, offset=offset)
        return await _run_page(ctx, query, count)

    @api.get("/runs", response_model=schemas.RunPage, summary="Runs across jobs, newest first")
    async def list_runs(
        ctx: Ctx,
        job: Annotated[str | None, Query(max_length=200, description="Only this job")] = None,
        status: Annotated[list[StatusName] | None, Query()] = None,
        since: Annotated[datetime | None, Query(description="scheduled_for >= since")] = None,
        until: Annotated[datetime | None, Query(description="scheduled_for < until")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
        count: CountParam = False,
    ) -> schemas.RunPage:
        for name, value in (("since", since), ("until", until)):
            if value is None:
                continue
            if value.utcoffset() is None:
                raise HTTPException(422, f"{name} needs a UTC offset (e.g. 2026-01-01T00:00:00Z)")
            try:
                value.astimezone(UTC)
            except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is in year 0 in UTC
                raise HTTPException(
                    422, f"{name} is out of range: give a time between the years 1 and 9999 in UTC"
                ) from None
        statuses = tuple(RunStatus(s) for s in status or ())
        query = RunQuery(
            job_id=job, statuses=statuses, since=since, until=until, limit=limit, offset=offset
        )
        return await _run_page(ctx, query, count)

    @api.get("/timeline", response_model=schemas.TimelineOut, summary="Runs around now")
    async def timeline(
        ctx: Ctx,
        hours: Annotated[int, Query(ge=1, le=168)] = 24,
        jobs: Annotated[int, Query(ge=1, le=100, description="Rows to draw")] = 20,
    ) -> schemas.TimelineOut:
        now = ctx.scheduler.clock.now()
        since = now - timedelta(hours=hours)
        runs = await ctx.scheduler.store.list_runs(RunQuery(since=since, limit=_TIMELINE_RUNS))
        ran = {r.job_id for r in runs}
        every = list(ctx.scheduler.jobs())
        every.sort(key=lambda j: (views.job_id_of(j) not in ran, *_sort_key(j)))
        rows = []
        for job in every[:jobs]:  # only the drawn rows need their stored state
            state = await ctx.cache.get(views.job_id_of(job), job)
            summary = views.job_summary(job, state, 0, now)
            trigger = views.job_trigger(job, views.job_definition(job, state.stored))
            active = summary.enabled and not summary.paused
            rows.append(TimelineJob(summary.id, summary.name, trigger, summary.timezone, active))
        timeline = build_timeline(rows, runs, now, hours, jobs)
        return timeline.model_copy(update={"total_jobs": len(every)})

    # -- health and nodes --------------------------------------------------------------
    @api.get("/nodes", response_model=schemas.NodesOut)
    async def list_nodes(ctx: Ctx) -> schemas.NodesOut:
        now = ctx.scheduler.clock.now()
        items = [node_out(hb, now) for hb in await ctx.scheduler.store.list_heartbeats()]
        for node in items:
            ctx.metrics.set_node(node.node_id, node.status, node.health_score)
        online = sum(1 for n in items if n.status == "online")
        return schemas.NodesOut(items=items, online=online, total=len(items))

    @api.get("/health", response_model=schemas.HealthOut)
    async def health(ctx: Ctx) -> schemas.HealthOut:
        reasons: list[str] = []
        level = 0
        try:
            running = await running_by_job(ctx)
            statuses: list[str] = []
            failing = 0
            for job in ctx.scheduler.jobs():
                job_id = views.job_id_of(job)
                state = await ctx.cache.get(job_id, job)
                status = views.job_status(job, state, running.get(job_id, 0))
                statuses.append(status)
                if state.consecutive_failures and status not in ("paused", "disabled"):
                    failing += 1
            nodes = (await list_nodes(ctx)).items
        except Exception as exc:  # the store is down: say so instead of failing
            log.warning("health check could not read the store: %s", exc)
            return schemas.HealthOut(
                status="unhealthy", reasons=[f"store unreachable: {exc}"], jobs=0, running=0,
                failing=0, paused=0, nodes_online=0, nodes_total=0,
                now=ctx.scheduler.clock.now(), engine={},
            )  # fmt: skip
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        ctx.metrics.set_jobs(counts)
        if failing:
            level = max(level, 1)
            reasons.append(f"{failing} job(s) failing")
        online = sum(1 for n in nodes if n.status == "online")
        offline = [n.node_id for n in nodes if n.status != "online"]
        if nodes and online == 0:
            level = 2
            reasons.append("no node is online")
        elif offline:
            level = max(level, 1)
            reasons.append(f"node(s) not online: {', '.join(offline[:5])}")
        engine = views.plain(await maybe_await(ctx.scheduler.health()))
        engine = engine if isinstance(engine, dict) else {"value": engine}
        reported = str(engine.get("status", "")).lower()
        if reported in ("unhealthy", "critical", "down", "stopped"):
            level = 2
            reasons.append(f"engine reports {reported}")
        elif reported in ("degraded", "warning"):
            level = max(level, 1)
            reasons.append(f"engine reports {reported}")
        return schemas.HealthOut(
            status=("healthy", "degraded", "unhealthy")[level],
            reasons=reasons,
            jobs=len(statuses),
            running=sum(running.values()),
            failing=failing,
            paused=counts.get("paused", 0),
            nodes_online=online,
            nodes_total=len(nodes),
            now=ctx.scheduler.clock.now(),
            engine=engine,
        )

    # -- queues ------------------------------------------------------------------------
    @api.get("/queues", response_model=schemas.QueuesOut)
    async def list_queues(ctx: Ctx) -> schemas.QueuesOut:
        if ctx.queues is None:
            return schemas.QueuesOut(available=False, items=[])
        items = []
        for name in ctx.queues.names():
            queue = ctx.queues.get(name)
            if queue is not None:
                items.append(await queue_out(ctx, name, queue))
        return schemas.QueuesOut(available=True, items=items)

    @api.get("/queues/{name}", response_model=schemas.QueueOut, responses=_NOT_FOUND)
    async def get_queue(ctx: Ctx, name: QueueName) -> schemas.QueueOut:
        return await queue_out(ctx, name, find_queue(ctx, name))

    @api.get("/queues/{name}/jobs", response_model=schemas.QueueJobPage, responses=_QUEUE_READ)
    async def list_queue_jobs(
        ctx: Ctx,
        name: QueueName,
        state: schemas.QueueJobState = "waiting",
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> schemas.QueueJobPage:
        """A page of the queue's jobs in one state: waiting in the order they will run,
        delayed by due time, active by start, completed and failed newest first."""
        return await queues.queue_jobs(find_queue(ctx, name), name, state, offset, limit)

    @api.get(
        "/queues/{name}/jobs/{job_id}", response_model=schemas.QueueJobOut, responses=_QUEUE_READ
    )
    # Queue job ids may hold '/' (sent as %2F): the same route for them, left out of the schema.
    @api.get(
        "/queues/{name}/jobs/{job_id:path}",
        response_model=schemas.QueueJobOut,
        include_in_schema=False,
    )
    async def get_queue_job(
        ctx: Ctx, name: QueueName, job_id: Annotated[str, Path(min_length=1, max_length=300)]
    ) -> schemas.QueueJobOut:
        """One job of the queue, with its data, result, progress and full error."""
        return await queues.queue_job(find_queue(ctx, name), name, job_id)

    @api.post("/queues/{name}/pause", response_model=schemas.QueueOut, responses=_NOT_FOUND)
    async def pause_queue(ctx: Ctx, name: QueueName) -> schemas.QueueOut:
        queue = await queue_to_change(ctx, name, "pause")
        await queue.pause()
        return await queue_out(ctx, name, queue)

    @api.post("/queues/{name}/resume", response_model=schemas.QueueOut, responses=_NOT_FOUND)
    async def resume_queue(ctx: Ctx, name: QueueName) -> schemas.QueueOut:
        queue = await queue_to_change(ctx, name, "resume")
        await queue.resume()
        return await queue_out(ctx, name, queue)

    @api.post("/queues/{name}/clean", response_model=schemas.CleanResult, responses=_NOT_FOUND)
    async def clean_queue(
        ctx: Ctx, name: QueueName, body: Annotated[schemas.CleanRequest | None, Body()] = None
    ) -> schemas.CleanResult:
        queue = await queue_to_change(ctx, name, "clean")
        req = body or schemas.CleanRequest()
        removed = await queue.clean(req.grace, req.limit, req.state)
        count = len(removed) if isinstance(removed, list | tuple | set) else int(removed or 0)
        return schemas.CleanResult(queue=name, state=req.state, removed=count)

    # -- cron playground ---------------------------------------------------------------
    @api.post("/cron/validate", response_model=schemas.CronValidateResult)
    async def validate_cron(
        ctx: Ctx, body: schemas.CronValidateRequest
    ) -> schemas.CronValidateResult:
        return cron_check(body, ctx.scheduler.clock.now())

    return api


def cron_check(body: schemas.CronValidateRequest, now: datetime) -> schemas.CronValidateResult:
    """Validate `body.expression` with `agentcron.cron` (errors are data, never exceptions)."""
    try:
        from agentcron.cron import CronExpression
    except ImportError:  # pragma: no cover - cron ships with agentcron
        return schemas.CronValidateResult(valid=False, error="cron support is not installed")
    try:
        result = CronExpression.validate(
            body.expression, tz=body.timezone, now=now, count=body.count
        )
    except Exception as exc:  # unknown time zone and the like
        return schemas.CronValidateResult(valid=False, error=str(exc) or type(exc).__name__)
    data = views.plain(result)
    data = data if isinstance(data, dict) else {}
    next_runs = [datetime.fromisoformat(str(t)) for t in (data.get("next_runs") or [])]
    description = data.get("description")
    if data.get("valid") and description is None:
        with contextlib.suppress(Exception):
            description = CronExpression(body.expression, tz=body.timezone).describe()
    return schemas.CronValidateResult(
        valid=bool(data.get("valid")),
        error=data.get("error"),
        warnings=[str(w) for w in data.get("warnings") or []],
        description=description,
        next_runs=next_runs[: body.count],
    )


def metrics_response(ctx: DashboardContext) -> Response:
    ctx.metrics.ws_clients.set(ctx.hub.client_count)
    ctx.metrics.ws_dropped.set(ctx.hub.slow_clients_dropped)
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)
