"""Store writes of a running scheduler: call order kept, new jobs stored together."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from agentcron.engine import Scheduler
from agentcron.handlers import RunContext
from agentcron.models import StoredJob
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import Interval


async def noop() -> None:
    return None


class CountingStore(MemoryStore):
    """Counts job saves in flight at once; refuses to save the job named `broken`."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0

    async def save_job(self, job: StoredJob, **kwargs: Any) -> StoredJob:
        if job.id == "broken":
            raise RuntimeError("disk says no")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # one loop turn, as a real store's round trip
            return await super().save_job(job, **kwargs)
        finally:
            self.in_flight -= 1


async def test_jobs_added_while_running_are_stored_together_and_later_changes_wait_their_turn() -> (
    None
):
    store = CountingStore()
    async with Scheduler(store=store, node_id="n") as sched:
        for i in range(600):
            sched.add_job(f"job-{i}", trigger=Interval(minutes=5), handler=noop)
        sched.pause("job-7", note="later")
        sched.remove("job-5")
        sched.add_job("job-5", trigger=Interval(minutes=9), handler=noop)
        await sched.flush()
        stored = {job.id: job for job in await store.list_jobs()}
    assert len(stored) == 600
    assert stored["job-7"].paused and stored["job-7"].pause_note == "later"
    assert stored["job-5"].definition["trigger"]["seconds"] == 540  # re-added after removal
    assert 1 < store.most_in_flight <= 256


async def test_a_failed_write_is_logged_and_the_other_jobs_are_still_stored(caplog: Any) -> None:
    store = CountingStore()
    async with Scheduler(store=store, node_id="n") as sched:
        for job_id in ("a", "broken", "b"):
            sched.add_job(job_id, trigger=Interval(minutes=5), handler=noop)
        await sched.flush()
        stored = {job.id for job in await store.list_jobs()}
    assert stored == {"a", "b"}
    assert "store write failed" in caplog.text and "disk says no" in caplog.text


class FlakyStartStore(MemoryStore):
    """`start_fires` fails the first time (a locked or unreachable store), then works."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def start_fires(self, fires: Any, node_id: str, *, now: datetime) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is locked")
        return await super().start_fires(fires, node_id, now=now)


async def test_a_tick_whose_claims_fail_is_logged_and_the_next_tick_fires(caplog: Any) -> None:
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    fired: list[datetime] = []

    async def job(ctx: RunContext) -> None:
        fired.append(ctx.scheduled_for)

    async with Scheduler(store=FlakyStartStore(), clock=clock, node_id="n") as sched:
        sched.add_job("tick", trigger=Interval(seconds=10), handler=job)
        await sched.flush()
        await clock.advance(20)
    assert fired == [datetime(2026, 3, 1, 0, 0, 20, tzinfo=UTC)]
    assert "could not claim the 1 fire(s) due at 2026-03-01T00:00:10" in caplog.text
