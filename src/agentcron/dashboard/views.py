"""Turn the engine's job objects, stored jobs and runs into API response models.

Job objects belong to the engine, so they are read defensively: attributes of DESIGN 2.3
when present, then the stored definition (`StoredJob.definition`), then sensible defaults.
Per-job state that needs the store (paused flag, last result) is kept in `JobStateCache`,
refreshed on the job's events and otherwise after `ttl_s` of monotonic time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
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
    "job_summary",
    "next_fires",
    "plain",
    "run_out",
    "schedule_text",
]

T = TypeVar("T")

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
        try:
            from agentcron.cron import CronExpression

            return str(CronExpression(str(data.get("expr")), tz=tz).describe())
        except Exception:  # an unparsable stored job must not break the page
            return schedule_text(trigger)
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
    """Stored job + last final run per job id, refreshed on events or after `ttl_s`."""

    def __init__(self, scheduler: SchedulerLike, *, ttl_s: float = 5.0) -> None:
        self._scheduler = scheduler
        self._ttl_s = ttl_s
        self._states: dict[str, JobState] = {}

    def on_event(self, event: Event) -> None:
        job_id = getattr(event, "job_id", None)
        if isinstance(job_id, str):
            self._states.pop(job_id, None)

    def forget(self, job_id: str) -> None:
        self._states.pop(job_id, None)

    async def get(self, job_id: str) -> JobState:
        now = self._scheduler.clock.monotonic()
        state = self._states.get(job_id)
        if state is not None and now - state.loaded_at < self._ttl_s:
            return state
        store = self._scheduler.store
        stored = await store.get_job(job_id)
        recent = await store.list_runs(RunQuery(job_id=job_id, statuses=FINAL_STATUSES, limit=5))
        failures = 0
        for run in recent:
            if run.status not in FAILED_STATUSES:
                break
            failures += 1
        if failures == len(recent) == 5:
            failures = (await store.run_stats(job_id)).consecutive_failures
        state = JobState(stored, recent[0] if recent else None, failures, now)
        self._states[job_id] = state
        return state


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


def job_summary(
    job: Any, state: JobState, running: int, now: datetime
) -> schemas.JobSummary:
    stored = state.stored
    definition = job_definition(job, stored)
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
        consecutive_failures=state.consecutive_failures,
        queue=str(queue) if isinstance(queue, str) else None,
        unavailable=str(unavailable) if unavailable else None,
    )


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
