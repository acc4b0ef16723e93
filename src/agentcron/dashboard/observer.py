"""`StoreObserver`: the dashboard's view of a deployment through its store alone.

`agentcron dashboard` serves a store that another process (`agentcron run`) schedules. It
must not become a second scheduler, so it gets this read-only stand-in for `Scheduler`:

* `jobs()` / `job(id)` come from a snapshot of `store.list_jobs()`, refreshed every
  `poll_s` seconds (of the injected clock) by `run()`;
* each refresh compares the snapshot and the newest runs with the previous ones and
  publishes the matching events (`job.*`, `run.*`), so the page stays live;
* changes (run now, pause, add, ...) raise `ReadOnlyError` (HTTP 409 with a message saying
  where to make them): the scheduling process would not see them until it restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agentcron.clock import Clock, SystemClock
from agentcron.events import (
    Event,
    EventBus,
    JobAdded,
    JobPaused,
    JobRemoved,
    JobResumed,
    JobUpdated,
    RunCancelled,
    RunFailed,
    RunInterrupted,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
)
from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_join

__all__ = ["ReadOnlyError", "StoreObserver"]

log = logging.getLogger("agentcron.dashboard.observer")

_RUNS_PER_POLL = 200


class ReadOnlyError(RuntimeError):
    """This dashboard only observes the store; change jobs where the scheduler runs."""


class StoredJobView:
    """A stored job shaped like the engine's `JobView` (what `views` reads)."""

    __slots__ = ("last_fire", "next_run", "pause_note", "paused", "stored")

    def __init__(self, stored: StoredJob) -> None:
        self.stored = stored
        self.paused = stored.paused
        self.pause_note = stored.pause_note
        self.next_run = stored.next_run
        self.last_fire = stored.last_fire

    @property
    def id(self) -> str:
        return self.stored.id

    @property
    def name(self) -> str:
        return str(self.stored.definition.get("name") or self.stored.id)

    @property
    def tags(self) -> list[str]:
        tags = self.stored.definition.get("tags") or []
        return [str(t) for t in tags] if isinstance(tags, list) else []

    @property
    def enabled(self) -> bool:
        return bool(self.stored.definition.get("enabled", True))

    @property
    def queue(self) -> str | None:
        queue = self.stored.definition.get("queue")
        return queue if isinstance(queue, str) else None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "definition": dict(self.stored.definition)}


def _run_event(run: RunRecord, now: datetime) -> Event | None:
    common: dict[str, Any] = {
        "at": run.finished_at or run.started_at or now,
        "job_id": run.job_id,
        "run_id": run.run_id,
        "scheduled_for": run.scheduled_for,
        "attempt": run.attempt,
        "node_id": run.node_id,
    }
    duration = run.duration_s or 0.0
    match run.status:
        case RunStatus.running:
            return RunStarted(**common)
        case RunStatus.succeeded:
            return RunSucceeded(**common, duration_s=duration)
        case RunStatus.failed:
            return RunFailed(**common, error=run.error or "", duration_s=duration)
        case RunStatus.timed_out:
            return RunTimedOut(**common)
        case RunStatus.cancelled:
            return RunCancelled(**common, reason=run.error or "")
        case RunStatus.skipped:
            return RunSkipped(**common, reason=run.skip_reason or "")
        case RunStatus.interrupted:
            return RunInterrupted(**common)
    return None


class StoreObserver:
    """A read-only `SchedulerLike` over `store` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        events: EventBus | None = None,
        poll_s: float = 2.0,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.events = events or EventBus()
        self.poll_s = poll_s
        self._views: dict[str, StoredJobView] = {}
        self._runs: dict[str, RunStatus] = {}
        self._loaded = False
        self._task: asyncio.Task[None] | None = None

    # -- reading (the SchedulerLike surface) ---------------------------------------------
    def jobs(self) -> Sequence[StoredJobView]:
        return [self._views[k] for k in sorted(self._views)]

    def job(self, job_id: str) -> StoredJobView:
        try:
            return self._views[job_id]
        except KeyError:
            raise KeyError(job_id) from None

    async def runs(self, job_id: str, limit: int = 50) -> list[RunRecord]:
        return await self.store.list_runs(RunQuery(job_id=job_id, limit=limit))

    def health(self) -> dict[str, Any]:
        return {"status": "observing", "mode": "read-only", "store": self.store.url}

    # -- changes are made where the scheduler runs --------------------------------------
    def _read_only(self, what: str) -> ReadOnlyError:
        return ReadOnlyError(
            f"this dashboard only reads {self.store.url}; {what} from the process that runs "
            "the scheduler (agentcron run serves a dashboard that can) or with `agentcron jobs`"
        )

    async def run_now(self, job_id: str) -> RunRecord:
        self.job(job_id)
        raise self._read_only("run jobs")

    def pause(self, job_id: str, note: str | None = None) -> None:
        self.job(job_id)
        raise self._read_only("pause jobs")

    def resume(self, job_id: str) -> None:
        self.job(job_id)
        raise self._read_only("resume jobs")

    def add_job(self, job_id: str, **kwargs: Any) -> None:
        raise self._read_only("add jobs")

    def update(self, job_id: str, **changes: Any) -> None:
        self.job(job_id)
        raise self._read_only("change jobs")

    def remove(self, job_id: str) -> None:
        self.job(job_id)
        raise self._read_only("remove jobs")

    # -- polling ---------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read the store once and publish what changed since the last refresh."""
        now = self.clock.now()
        stored = {s.id: s for s in await self.store.list_jobs()}
        runs = await self.store.list_runs(RunQuery(limit=_RUNS_PER_POLL))
        first = not self._loaded
        self._loaded = True
        if not first:
            for event in self._job_events(stored, now):
                self.events.publish(event)
        self._views = {k: StoredJobView(v) for k, v in stored.items()}
        seen: dict[str, RunStatus] = {}
        for run in reversed(runs):  # oldest first, so events come in order
            seen[run.run_id] = run.status
            if not first and self._runs.get(run.run_id) != run.status:
                run_event = _run_event(run, now)
                if run_event is not None:
                    self.events.publish(run_event)
        self._runs = seen

    def _job_events(self, stored: dict[str, StoredJob], now: datetime) -> list[Event]:
        out: list[Event] = []
        for job_id, job in stored.items():
            old = self._views.get(job_id)
            if old is None:
                out.append(JobAdded(at=now, job_id=job_id))
            elif job.paused != old.stored.paused:
                out.append(
                    JobPaused(at=now, job_id=job_id, note=job.pause_note)
                    if job.paused
                    else JobResumed(at=now, job_id=job_id)
                )
            elif job.version != old.stored.version or job.next_run != old.stored.next_run:
                out.append(JobUpdated(at=now, job_id=job_id))
        out.extend(JobRemoved(at=now, job_id=j) for j in self._views if j not in stored)
        return out

    async def run(self) -> None:
        """Refresh every `poll_s` seconds until cancelled; store errors are logged."""
        while True:
            await self.clock.sleep(self.poll_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot read the store %s: %s", self.store.url, exc)

    async def __aenter__(self) -> StoreObserver:
        await self.store.open()
        await self.refresh()
        self._task = asyncio.create_task(self.run(), name="dashboard-store-observer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_join(self._task)
        await self.store.close()
