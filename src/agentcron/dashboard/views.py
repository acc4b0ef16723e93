"""Turn the engine's job objects, stored jobs and runs into API response models.

Job objects belong to the engine, so they are read defensively: attributes of DESIGN 2.3
when present, then the stored definition (`StoredJob.definition`), then sensible defaults.
Per-job state that needs the store (paused flag, last result) is kept in `JobStateCache`,
refreshed on the job's events and otherwise after `ttl_s` of monotonic time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from agentcron.dashboard import schemas
from agentcron.dashboard.protocol import SchedulerLike
from agentcron.events import Event
from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob

__all__ = [
    "JobState",
    "JobStateCache",
    "describe_schedule",
    "job_detail",
    "job_progress",
    "job_summary",
    "next_fires",
    "plain",
    "run_out",
    "schedule_text",
]

T = TypeVar("T")

log = logging.getLogger("agentcron.dashboard")

FINAL_STATUSES = tuple(s for s in RunStatus if s.is_final and s is not RunStatus.skipped)
FAILED_STATUSES = frozenset(
    {RunStatus.failed, RunStatus.timed_out, RunStatus.interrupted, RunStatus.cancelled}
)


async def maybe_await(value: T | Awaitable[T]) -> T:
    """Await `value` when the scheduler method turned out to be a coroutine function."""
    if inspect.isawaitable(value):
        return await value
    return value


def plain(value: Any) -> Any:
    """A JSON-ready copy of `value` (dataclasses, `to_dict()` objects, datetimes, sets...)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        with contextlib.suppress(Exception):
            return plain(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "value") and isinstance(value.value, str | int):  # enums
        return value.value
    return str(value)


def _attr(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj and obj[name] is not None:
                return obj[name]
        else:
            value = getattr(obj, name, None)
            if value is not None:
                return value
    return default


# -- schedules ---------------------------------------------------------------------------
def _trigger_dict(trigger: Any) -> dict[str, Any]:
    if isinstance(trigger, Mapping):
        return dict(trigger)
    if isinstance(trigger, str):
        if trigger.strip().lower() == "@reboot":
            return {"type": "reboot"}
        return {"type": "cron", "expr": trigger.strip()}
    data = plain(trigger)
    return data if isinstance(data, dict) else {"type": "unknown", "text": str(trigger)}


def schedule_text(trigger: Any) -> str:
    """The trigger as a person would write it: cron text, `every 30s`, `at <time>`, `@reboot`."""
    if trigger is None:
        return ""
    data = _trigger_dict(trigger)
    kind = data.get("type")
    if kind == "cron":
        return str(data.get("expr") or data.get("expression") or "")
    if kind == "interval":
        return f"every {_seconds_text(float(data.get('seconds', 0)))}"
    if kind == "date":
        return f"at {data.get('at', '')}"
    if kind == "reboot":
        return "@reboot"
    return str(data.get("text") or data.get("expr") or trigger)


def _seconds_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def describe_schedule(trigger: Any, tz: str) -> str:
    """The schedule in words (via `agentcron.cron` for cron triggers)."""
    data = _trigger_dict(trigger) if trigger is not None else {}
    kind = data.get("type")
    if kind == "cron":
        return _describe_cron(str(data.get("expr")), tz) or schedule_text(trigger)
    if kind == "interval":
        return f"Every {_seconds_text(float(data.get('seconds', 0)))}"
    if kind == "date":
        return f"Once, at {data.get('at', '')}"
    if kind == "reboot":
        return "Once each time the scheduler starts"
    describe = getattr(trigger, "describe", None)
    if callable(describe):
        with contextlib.suppress(Exception):
            return str(describe())
    return schedule_text(trigger)


@functools.lru_cache(maxsize=4096)
def _describe_cron(expr: str, tz: str) -> str | None:
    try:
        from agentcron.cron import CronExpression

        return str(CronExpression(expr, tz=tz).describe())
    except Exception:  # an unparsable stored job must not break the page
        return None


def next_fires(trigger: Any, tz: str, after: datetime, count: int) -> list[datetime]:
    """Up to `count` fire times strictly after `after` (empty when unknown or never)."""
    out: list[datetime] = []
    step = getattr(trigger, "next_fire", None)
    if not callable(step):
        data = _trigger_dict(trigger) if trigger is not None else {}
        if data.get("type") != "cron":
            return out
        try:
            from agentcron.cron import CronExpression

            step = CronExpression(str(data.get("expr")), tz=tz).next
        except Exception:
            return out
    cursor = after
    for _ in range(count):
        try:
            nxt = step(cursor)
        except Exception:
            break
        if not isinstance(nxt, datetime) or nxt <= cursor:
            break
        out.append(nxt.astimezone(UTC))
        cursor = nxt
    return out


# -- runs -------------------------------------------------------------------------------
def run_out(run: RunRecord) -> schemas.RunOut:
    lateness = None
    if run.started_at is not None:
        lateness = max(0.0, (run.started_at - run.scheduled_for).total_seconds())
    return schemas.RunOut(
        run_id=run.run_id,
        job_id=run.job_id,
        scheduled_for=run.scheduled_for,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration=run.duration_s,
        status=str(run.status),  # type: ignore[arg-type]
        attempt=run.attempt,
        error=run.error,
        output_tail=run.output_tail,
        node_id=run.node_id,
        skip_reason=run.skip_reason,
        lateness=lateness,
    )


# -- per-job state ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JobState:
    stored: StoredJob | None
    last: RunRecord | None
    consecutive_failures: int
    loaded_at: float


class JobStateCache:
    """Stored job + last final run per job id.

    An entry is dropped when an event names its job, unless its type is `IGNORED` (the
    engine records a run before it publishes the run's event, so the reload sees the
    change), and refreshed by `sweep()` (run by the app) or, without a sweeper, after
    `ttl_s`. The sweeper keeps a large deployment's pages warm: a page of 100 rows then
    costs no store reads.
    """

    #: Events that change nothing the cache holds: progress is read from the engine's view
    #: (`job_progress`), and a run reporting every percent must not cost a store read each.
    IGNORED = frozenset({"run.progress"})

    def __init__(self, scheduler: SchedulerLike, *, ttl_s: float = 120.0) -> None:
        self._scheduler = scheduler
        self._ttl_s = ttl_s
        self._states: dict[str, JobState] = {}
        self._sweeping = False

    def on_event(self, event: Event) -> None:
        if event.type in self.IGNORED:
            return
        job_id = getattr(event, "job_id", None)
        if isinstance(job_id, str):
            self._states.pop(job_id, None)

    def forget(self, job_id: str) -> None:
        self._states.pop(job_id, None)

    def __len__(self) -> int:
        """How many jobs have a cached state (the sweeper's progress)."""
        return len(self._states)

    async def get(self, job_id: str, job: Any = None) -> JobState:
        state = self._states.get(job_id)
        if state is not None and (
            self._sweeping or self._scheduler.clock.monotonic() - state.loaded_at < self._ttl_s
        ):
            return state
        return await self._load(job_id, job)

    async def _load(self, job_id: str, job: Any) -> JobState:
        store = self._scheduler.store
        now = self._scheduler.clock.monotonic()
        # The engine's view already says paused/pause_note/next_run and carries the
        # definition: the stored job is only read for views that do not.
        has_state = isinstance(getattr(job, "paused", None), bool) and hasattr(job, "to_dict")
        stored = getattr(job, "stored", None) if has_state else await store.get_job(job_id)
        recent = await store.list_runs(RunQuery(job_id=job_id, statuses=FINAL_STATUSES, limit=5))
        failures = 0
        for run in recent:
            if run.status not in FAILED_STATUSES:
                break
            failures += 1
        if failures == len(recent) == 5:
            failures = (await store.run_stats(job_id)).consecutive_failures
        state = JobState(
            stored if isinstance(stored, StoredJob) else None,
            recent[0] if recent else None,
            failures,
            now,
        )
        self._states[job_id] = state
        return state

    async def sweep(self, *, batch: int = 50) -> None:
        """Forever: load missing entries and refresh the ones older than `ttl_s`, in small
        batches that leave the event loop to the engine in between."""
        self._sweeping = True
        try:
            while True:
                now = self._scheduler.clock.monotonic()
                done = 0
                for job in list(self._scheduler.jobs()):
                    job_id = job_id_of(job)
                    state = self._states.get(job_id)
                    if state is not None and now - state.loaded_at < self._ttl_s:
                        continue
                    try:
                        await self._load(job_id, job)
                    except Exception as exc:  # the store is down: try again next sweep
                        log.warning("cannot refresh job %s: %s", job_id, exc)
                        break
                    done += 1
                    if done % batch == 0:
                        await asyncio.sleep(0)
                await self._scheduler.clock.sleep(self._ttl_s / 3)
        finally:
            self._sweeping = False


class RunningTracker:
    """Which runs are in progress, per job: kept from `run.*` events and re-read from the
    store by `resync()` (at start and every minute) in case an event was missed.

    Asking the store on every request would scan the run log (its `running` rows are
    few, but found by status across millions of rows).
    """

    _ENDS = frozenset({
        "run.succeeded", "run.failed", "run.timed_out", "run.cancelled", "run.skipped",
        "run.interrupted",
    })  # fmt: skip

    def __init__(self, scheduler: SchedulerLike) -> None:
        self._scheduler = scheduler
        self._runs: dict[str, str] = {}  # run_id -> job_id

    def on_event(self, event: Event) -> None:
        run_id, job_id = getattr(event, "run_id", None), getattr(event, "job_id", None)
        if not isinstance(run_id, str) or not isinstance(job_id, str):
            return
        if event.type == "run.started":
            self._runs[run_id] = job_id
        elif event.type in self._ENDS:
            self._runs.pop(run_id, None)

    async def resync(self) -> None:
        runs = await self._scheduler.store.list_runs(
            RunQuery(statuses=(RunStatus.running,), limit=100_000)
        )
        self._runs = {r.run_id: r.job_id for r in runs}

    def by_job(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job_id in self._runs.values():
            out[job_id] = out.get(job_id, 0) + 1
        return out

    async def run(self, every_s: float = 60.0) -> None:
        """Resync every `every_s` seconds (call `resync()` once first)."""
        while True:
            await self._scheduler.clock.sleep(every_s)
            try:
                await self.resync()
            except Exception as exc:  # the store is down: keep what the events said
                log.warning("cannot read running runs: %s", exc)


def inner_job(job: Any) -> Any:
    """The job definition inside an engine view (`JobView.job`), or `job` itself."""
    inner = getattr(job, "job", None)
    return inner if inner is not None and hasattr(inner, "id") else job


def job_id_of(job: Any) -> str:
    return str(_attr(job, "id", "job_id", default=""))


def job_definition(job: Any, stored: StoredJob | None) -> dict[str, Any]:
    to_dict = getattr(job, "to_dict", None)
    if callable(to_dict):
        with contextlib.suppress(Exception):
            data = to_dict()
            if isinstance(data, Mapping) and isinstance(data.get("definition"), Mapping):
                return dict(data["definition"])
    if stored is not None:
        return dict(stored.definition)
    data = plain(inner_job(job))
    return data if isinstance(data, dict) else {"id": job_id_of(job)}


def job_trigger(job: Any, definition: Mapping[str, Any]) -> Any:
    return _attr(inner_job(job), "trigger") or definition.get("trigger")


def job_timezone(job: Any) -> str:
    """The IANA name of the zone the job's schedule is read in (`"UTC"` if it says none)."""
    return _timezone(job, {})


def _timezone(job: Any, definition: Mapping[str, Any]) -> str:
    tz = _attr(inner_job(job), "timezone", "tz") or definition.get("timezone")
    trig = _trigger_dict(job_trigger(job, definition) or {})
    tz = tz or trig.get("tz") or "UTC"
    return str(getattr(tz, "key", tz))


def job_tags(job: Any) -> list[str]:
    tags = _attr(inner_job(job), "tags", default=())
    return sorted(str(t) for t in tags) if isinstance(tags, Iterable) else []


def job_name(job: Any) -> str:
    inner = inner_job(job)
    return str(_attr(inner, "display_name", "name", default="") or job_id_of(job))


def is_paused(job: Any, stored: StoredJob | None) -> bool:
    flag = _attr(job, "paused")
    if isinstance(flag, bool):
        return flag
    return bool(stored.paused) if stored is not None else False


def active_runs(job: Any) -> int | None:
    """Runs in progress as the engine counts them (None when the engine does not say)."""
    value = getattr(job, "active_runs", None)
    return value if isinstance(value, int) else None


def job_progress(job: Any) -> float | None:
    """The progress in percent of the job's newest running run that reported any, as the
    engine's view says (`JobView.progress`); None when it does not say, or says something
    other than a number in 0-100. A `StoredJobView` (read-only dashboard) never says: the
    progress lives in the scheduling process, not in the store."""
    value = getattr(job, "progress", None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 100 else None  # (NaN fails both comparisons)


def job_status(job: Any, state: JobState, running: int) -> str:
    """The dashboard status of a job, without building its whole summary."""
    definition_enabled = True
    if state.stored is not None:
        definition_enabled = bool(state.stored.definition.get("enabled", True))
    enabled = bool(_attr(inner_job(job), "enabled", default=definition_enabled))
    engine_running = active_runs(job)
    if engine_running is not None:
        running = max(running, engine_running)
    if not enabled or _attr(job, "unavailable"):
        return "disabled"
    if is_paused(job, state.stored):
        return "paused"
    if running:
        return "running"
    if state.consecutive_failures:
        return "failing"
    return "active"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    job_id: str
    name: str
    tags: tuple[str, ...]
    sort_key: tuple[str, str]
    hay: tuple[str, ...]  # casefolded id, name and tags, for search

    def matches(self, search: str | None, tag: str | None) -> bool:
        if tag and tag not in self.tags:
            return False
        if search:
            needle = search.casefold()
            return any(needle in h for h in self.hay)
        return True


class JobIndex:
    """Every job's id, name and tags, sorted by name: rebuilt when a `job.added`,
    `job.updated` or `job.removed` event arrives (or after `ttl_s`), not per request."""

    EVENTS = frozenset({"job.added", "job.updated", "job.removed"})

    def __init__(self, scheduler: SchedulerLike, *, ttl_s: float = 300.0) -> None:
        self._scheduler = scheduler
        self._ttl_s = ttl_s
        self._entries: list[IndexEntry] | None = None
        self._tags: list[str] = []
        self._built_at = 0.0

    def on_event(self, event: Event) -> None:
        if event.type in self.EVENTS:
            self._entries = None

    def invalidate(self) -> None:
        self._entries = None

    def entries(self) -> list[IndexEntry]:
        now = self._scheduler.clock.monotonic()
        if self._entries is None or now - self._built_at >= self._ttl_s:
            entries = []
            tags: set[str] = set()
            for job in self._scheduler.jobs():
                job_id, name, job_tags_ = job_id_of(job), job_name(job), tuple(job_tags(job))
                tags.update(job_tags_)
                hay = (job_id.casefold(), name.casefold(), *(t.casefold() for t in job_tags_))
                entries.append(IndexEntry(job_id, name, job_tags_, (name.casefold(), job_id), hay))
            entries.sort(key=lambda e: e.sort_key)
            self._entries, self._tags, self._built_at = entries, sorted(tags), now
        return self._entries

    def tags(self) -> list[str]:
        self.entries()
        return self._tags


def _summary_definition(job: Any, stored: StoredJob | None) -> Mapping[str, Any]:
    # A summary reads the engine job's attributes; serialising the whole definition
    # (`JobView.to_dict()`) is only needed when the object has none of them.
    if stored is not None:
        return stored.definition
    if hasattr(inner_job(job), "trigger"):
        return {}
    return job_definition(job, stored)


def job_summary(job: Any, state: JobState, running: int, now: datetime) -> schemas.JobSummary:
    stored = state.stored
    definition = _summary_definition(job, stored)
    trigger = job_trigger(job, definition)
    tz = _timezone(job, definition)
    paused = is_paused(job, stored)
    enabled = bool(_attr(inner_job(job), "enabled", default=definition.get("enabled", True)))
    unavailable = _attr(job, "unavailable")
    engine_running = active_runs(job)
    if engine_running is not None:
        running = max(running, engine_running)
    pause_note = _attr(job, "pause_note") or (stored.pause_note if stored else None)
    next_run = _attr(job, "next_run") or (stored.next_run if stored else None)
    if not isinstance(next_run, datetime):
        next_run = None
    if next_run is None and enabled and not paused:
        upcoming = next_fires(trigger, tz, now, 1)
        next_run = upcoming[0] if upcoming else None
    if paused or not enabled:
        next_run = None
    last = state.last
    last_result = None
    if last is not None:
        last_result = schemas.LastResult(
            status=str(last.status),  # type: ignore[arg-type]
            at=last.finished_at or last.started_at or last.scheduled_for,
            duration=last.duration_s,
            error=last.error,
        )
    if not enabled or unavailable:
        status = "disabled"
    elif paused:
        status = "paused"
    elif running:
        status = "running"
    elif state.consecutive_failures:
        status = "failing"
    else:
        status = "active"
    queue = _attr(inner_job(job), "queue") or definition.get("queue")
    return schemas.JobSummary(
        id=job_id_of(job),
        name=job_name(job),
        schedule=schedule_text(trigger),
        description=describe_schedule(trigger, tz),
        timezone=tz,
        status=status,  # type: ignore[arg-type]
        enabled=enabled,
        paused=paused,
        pause_note=str(pause_note) if paused and pause_note else None,
        tags=job_tags(job),
        next_run=next_run,
        last_result=last_result,
        running=running,
        progress=job_progress(job),
        consecutive_failures=state.consecutive_failures,
        queue=str(queue) if isinstance(queue, str) else None,
        unavailable=str(unavailable) if unavailable else None,
        disabled_reason=_disabled_reason(job, definition) if not enabled else None,
    )


def _disabled_reason(job: Any, definition: Mapping[str, Any]) -> str | None:
    """The job's own `disabled_reason` (as `agentcron jobs list` shows it), if any."""
    reason = _attr(inner_job(job), "disabled_reason") or definition.get("disabled_reason")
    return reason if isinstance(reason, str) and reason else None


async def job_detail(
    scheduler: SchedulerLike, job: Any, state: JobState, running: int, now: datetime
) -> schemas.JobDetail:
    summary = job_summary(job, state, running, now)
    definition = job_definition(job, state.stored)
    trigger = job_trigger(job, definition)
    upcoming: list[datetime] = []
    if summary.enabled and not summary.paused:
        upcoming = next_fires(trigger, summary.timezone, now, 10)
    stats = await scheduler.store.run_stats(summary.id)
    recent = await scheduler.store.list_runs(RunQuery(job_id=summary.id, limit=50))
    return schemas.JobDetail(
        **summary.model_dump(),
        definition=plain(definition),
        next_runs=upcoming,
        stats=schemas.JobStats(
            total=stats.total,
            succeeded=stats.succeeded,
            failed=stats.failed,
            skipped=stats.skipped,
            p50_duration=stats.p50_duration_s,
            p95_duration=stats.p95_duration_s,
            last_success=stats.last_success,
            last_failure=stats.last_failure,
        ),
        recent_runs=[run_out(r) for r in recent],
    )
