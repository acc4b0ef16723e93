from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from agentcron.engine import Scheduler
from agentcron.events import Event
from agentcron.handlers import RunContext
from agentcron.models import RunRecord, RunStatus
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

#: Sunday 1 March 2026, midnight UTC.
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def make_scheduler(clock: VirtualClock, store: MemoryStore) -> Callable[..., Scheduler]:
    def make(**kwargs: Any) -> Scheduler:
        kwargs.setdefault("store", store)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("node_id", "node-a")
        kwargs.setdefault("rng", random.Random(0))
        kwargs.setdefault("lease_s", 600.0)
        return Scheduler(**kwargs)

    return make


@pytest.fixture
async def sched(make_scheduler: Callable[..., Scheduler]) -> AsyncIterator[Scheduler]:
    scheduler = make_scheduler()
    yield scheduler
    await scheduler.stop(grace_s=0)


class EventLog:
    """Collects every event the scheduler publishes (sync subscriber)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type_: str) -> list[Any]:
        return [e for e in self.events if e.type == type_]


@pytest.fixture
def event_log(sched: Scheduler) -> EventLog:
    log = EventLog()
    sched.events.subscribe(log)
    return log


async def all_runs(scheduler: Scheduler, job_id: str) -> list[RunRecord]:
    """The job's runs, oldest first."""
    return list(reversed(await scheduler.runs(job_id, limit=100_000)))


def statuses(runs: list[RunRecord]) -> list[str]:
    return [
        str(r.status) if r.status != RunStatus.skipped else f"skipped({r.skip_reason})"
        for r in runs
    ]


async def wait_real(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for real processes (bounded); for handler subprocess clean-up only."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)  # a real child process is being killed (noqa: sleep-ok)


async def noop() -> str:
    """An async handler that succeeds at once (sync ones run in real threads)."""
    return "done"


class Stubborn:
    """An async handler that ignores cancellation: it runs until `release()`."""

    def __init__(self) -> None:
        self.started: list[datetime] = []
        self.released = asyncio.Event()

    async def __call__(self, ctx: RunContext) -> None:
        self.started.append(ctx.scheduled_for)
        while not self.released.is_set():
            try:
                await self.released.wait()
            except asyncio.CancelledError:
                pass  # the point: it ignores being cancelled

    def release(self) -> None:
        self.released.set()
