"""A small stand-in for `agentcron.Scheduler` (DESIGN 2.13 surface) and for queues.

Used where a test needs to control a run's timing precisely (a run that waits on a gate),
and by the benchmark to seed many jobs without an engine loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentcron.clock import Clock, SystemClock
from agentcron.events import (
    EventBus,
    JobAdded,
    JobPaused,
    JobRemoved,
    JobResumed,
    JobUpdated,
    QueuePaused,
    QueueResumed,
    RunFailed,
    RunStarted,
    RunSucceeded,
)
from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob, new_run_id
from agentcron.store.base import Store
from agentcron.store.memory import MemoryStore

Handler = Callable[[], Awaitable[str | None]]


async def _ok() -> str | None:
    return "ok"


@dataclass
class FakeJob:
    id: str
    trigger: str
    name: str = ""
    timezone: str = "UTC"
    tags: tuple[str, ...] = ()
    enabled: bool = True
    handler: Handler = _ok

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass
class FakeView:
    job: FakeJob
    paused: bool = False
    pause_note: str | None = None
    next_run: datetime | None = None
    active_runs: int = 0

    @property
    def id(self) -> str:
        return self.job.id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.job.id, "definition": definition(self.job)}


def definition(job: FakeJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "trigger": {"type": "cron", "expr": job.trigger, "tz": job.timezone},
        "timezone": job.timezone,
        "tags": list(job.tags),
        "handler": {"kind": "callable", "ref": "tests.dashboard.fakes:_ok"},
    }


@dataclass
class FakeScheduler:
    clock: Clock = field(default_factory=SystemClock)
    store: Store = field(default_factory=MemoryStore)
    events: EventBus = field(default_factory=EventBus)
    views: dict[str, FakeView] = field(default_factory=dict)
    running: bool = True

    def add_job(
        self,
        id: str,
        *,
        trigger: str,
        handler: Any = None,
        name: str | None = None,
        timezone: str | None = None,
        tags: Any = (),
        **options: Any,
    ) -> FakeJob:
        if not isinstance(trigger, str) or not trigger.strip():
            raise ValueError("trigger: empty cron expression")
        from agentcron.cron import CronExpression

        CronExpression(trigger, tz=timezone or "UTC")  # raises CronError (a ValueError)
        job = FakeJob(id=id, trigger=trigger, name=name or "", timezone=timezone or "UTC",
                      tags=tuple(tags))  # fmt: skip
        if callable(handler) and asyncio.iscoroutinefunction(handler):
            job.handler = handler
        self.views[id] = FakeView(job=job)
        self.events.publish(JobAdded(at=self.clock.now(), job_id=id))
        return job

    async def save_all(self) -> None:
        """Write every job to the store (what the engine does when it starts)."""
        for view in self.views.values():
            await self.store.save_job(
                StoredJob(id=view.id, definition=definition(view.job)), actor="code"
            )

    def update(self, job_id: str, **changes: Any) -> FakeJob:
        view = self._view(job_id)
        for key, value in changes.items():
            if key == "trigger":
                from agentcron.cron import CronExpression

                CronExpression(value, tz=changes.get("timezone", view.job.timezone))
            if not hasattr(view.job, key):
                raise ValueError(f"{key}: unknown option")
            setattr(view.job, key, tuple(value) if key == "tags" else value)
        self.events.publish(JobUpdated(at=self.clock.now(), job_id=job_id))
        return view.job

    def remove(self, job_id: str) -> None:
        self._view(job_id)
        del self.views[job_id]
        self.events.publish(JobRemoved(at=self.clock.now(), job_id=job_id))

    def pause(self, job_id: str, note: str | None = None) -> None:
        view = self._view(job_id)
        view.paused, view.pause_note = True, note
        self.events.publish(JobPaused(at=self.clock.now(), job_id=job_id, note=note))

    def resume(self, job_id: str) -> None:
        view = self._view(job_id)
        view.paused, view.pause_note = False, None
        self.events.publish(JobResumed(at=self.clock.now(), job_id=job_id))

    def jobs(self) -> list[FakeView]:
        return [self.views[k] for k in sorted(self.views)]

    def job(self, job_id: str) -> FakeView:
        return self._view(job_id)

    def _view(self, job_id: str) -> FakeView:
        try:
            return self.views[job_id]
        except KeyError:
            raise KeyError(job_id) from None

    async def runs(self, job_id: str, limit: int = 50) -> list[RunRecord]:
        return await self.store.list_runs(RunQuery(job_id=job_id, limit=limit))

    async def run_now(self, job_id: str) -> RunRecord:
        if not self.running:
            raise RuntimeError("start the scheduler first")
        view = self._view(job_id)
        now = self.clock.now()
        run = RunRecord(run_id=new_run_id(), job_id=job_id, scheduled_for=now,
                        status=RunStatus.running, started_at=now, node_id="fake-node")  # fmt: skip
        await self.store.record_run(run)
        view.active_runs += 1
        self.events.publish(
            RunStarted(at=now, job_id=job_id, run_id=run.run_id, scheduled_for=now, node_id="fake-node")
        )
        try:
            output = await view.job.handler()
        except Exception as exc:
            end = self.clock.now()
            run = run.evolve(status=RunStatus.failed, finished_at=end, error=str(exc))
            await self.store.record_run(run)
            view.active_runs -= 1
            self.events.publish(RunFailed(at=end, job_id=job_id, run_id=run.run_id,
                                          scheduled_for=now, error=str(exc),
                                          duration_s=run.duration_s or 0.0))  # fmt: skip
            return run
        end = self.clock.now()
        run = run.evolve(status=RunStatus.succeeded, finished_at=end, output_tail=output)
        await self.store.record_run(run)
        view.active_runs -= 1
        self.events.publish(RunSucceeded(at=end, job_id=job_id, run_id=run.run_id,
                                         scheduled_for=now, duration_s=run.duration_s or 0.0))  # fmt: skip
        return run

    def health(self) -> dict[str, Any]:
        return {"status": "running" if self.running else "stopped", "jobs": len(self.views)}


class FakeQueue:
    """Counts in memory; `pause`/`resume`/`clean` behave like the Queue protocol."""

    def __init__(self, name: str, events: EventBus, clock: Clock, counts: dict[str, int]) -> None:
        self.name = name
        self._events = events
        self._clock = clock
        self._counts = dict(counts)
        self._paused = False

    async def counts(self) -> dict[str, int]:
        return {**self._counts, "paused": self._counts["waiting"] if self._paused else 0}

    async def is_paused(self) -> bool:
        return self._paused

    async def pause(self) -> None:
        self._paused = True
        self._events.publish(QueuePaused(at=self._clock.now(), queue=self.name))

    async def resume(self) -> None:
        self._paused = False
        self._events.publish(QueueResumed(at=self._clock.now(), queue=self.name))

    async def clean(self, grace: float, limit: int = 0, state: str = "completed") -> list[str]:
        n = self._counts.get(state, 0)
        removed = n if limit == 0 else min(n, limit)
        self._counts[state] = n - removed
        return [f"{state}-{i}" for i in range(removed)]


class FakeQueues:
    def __init__(self, queues: list[FakeQueue]) -> None:
        self._queues = {q.name: q for q in queues}

    def names(self) -> list[str]:
        return sorted(self._queues)

    def get(self, name: str) -> FakeQueue | None:
        return self._queues.get(name)
