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


class OtherNodeStore(MemoryStore):
    """Counts job reads; once `armed`, right after a read of all jobs "another node" stores
    `job-3` with its own definition and state (so the read is already stale)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads_one = 0
        self.reads_all = 0
        self.state_writes = 0
        self.armed = False

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        self.state_writes += 1
        await super().set_job_state(job_id, next_run=next_run, last_fire=last_fire)

    async def get_job(self, job_id: str) -> StoredJob | None:
        self.reads_one += 1
        return await super().get_job(job_id)

    async def list_jobs(self) -> list[StoredJob]:
        self.reads_all += 1
        jobs = await super().list_jobs()
        if not self.armed:
            return jobs
        self.armed = False
        other = StoredJob(id="job-3", definition={"other": "node"})
        await super().save_job(other, actor="other-node")
        await super().set_job_state("job-3", next_run=LAST_FIRE, last_fire=LAST_FIRE)
        return jobs


LAST_FIRE = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_a_thousand_jobs_added_at_once_are_read_from_the_store_in_one_call() -> None:
    store = OtherNodeStore()
    async with Scheduler(store=store, node_id="n") as sched:
        store.armed, store.reads_all = True, 0  # (the start read the store too)
        for i in range(1000):
            sched.add_job(f"job-{i}", trigger=Interval(minutes=5), handler=noop)
        await sched.flush()
        assert (store.reads_all, store.reads_one) == (1, 0)
        # The jobs absent at the read are inserted with their state, one write each; only
        # job-3 (found stored by "another node") has its state written apart.
        assert store.state_writes == 1
        stored = {job.id: job for job in await store.list_jobs()}
        assert len(stored) == 1000
        assert stored["job-10"].next_run == sched.job("job-10").next_run is not None
        # Stored by "another node" after the read: its state is adopted, and the default
        # conflict policy (replace) puts this node's definition in place of its one.
        assert sched.job("job-3").last_fire == LAST_FIRE
        assert stored["job-3"].definition["trigger"]["seconds"] == 300
        assert stored["job-3"].last_fire == LAST_FIRE


async def test_a_job_another_node_stored_after_the_batch_read_is_kept_when_told_to_keep() -> None:
    store = OtherNodeStore()
    async with Scheduler(store=store, node_id="n", conflict="keep") as sched:
        store.armed = True
        for i in range(1000):
            sched.add_job(f"job-{i}", trigger=Interval(minutes=5), handler=noop)
        await sched.flush()
        stored = {job.id: job for job in await store.list_jobs()}
        assert stored["job-3"].definition == {"other": "node"}
        assert stored["job-4"].definition["trigger"]["seconds"] == 300
