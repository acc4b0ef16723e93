"""Store writes of a running scheduler: call order kept, new jobs stored together."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from agentcron.control import JOBS_CHANGED_KEY
from agentcron.engine import Scheduler
from agentcron.engine.persistence import WATCH_JOBS_S, WRITE_RETRY_FIRST_S, WRITE_RETRY_MAX_S
from agentcron.handlers import RunContext
from agentcron.jobs import job_to_definition
from agentcron.models import RunStatus, StoredJob
from agentcron.store.base import StoreError
from agentcron.store.memory import MemoryStore
from agentcron.store.sqlite import SqliteStore
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


class LockedStore(MemoryStore):
    """Refuses every change to jobs while `locked` (another process holds the database's
    write lock past its busy timeout), counting the refusals."""

    def __init__(self) -> None:
        super().__init__()
        self.locked = False
        self.refusals = 0

    def _check(self) -> None:
        if self.locked:
            self.refusals += 1
            raise StoreError("cannot write: database is locked")

    async def save_job(self, job: StoredJob, **kwargs: Any) -> StoredJob:
        self._check()
        return await super().save_job(job, **kwargs)

    async def set_paused(self, job_id: str, paused: bool, **kwargs: Any) -> StoredJob | None:
        self._check()
        return await super().set_paused(job_id, paused, **kwargs)

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        self._check()
        return await super().delete_job(job_id, actor=actor)


async def until_done(task: asyncio.Task[None], clock: VirtualClock, seconds: float) -> None:
    """Advance the clock a second at a time, up to `seconds`, until `task` is done."""
    for _ in range(int(seconds)):
        if task.done():
            return
        await clock.advance(1)


async def test_changes_the_store_refuses_are_tried_again_in_order_until_it_takes_them(
    caplog: Any,
) -> None:
    # They were logged once and dropped: a job added through the dashboard while another
    # process held the database's lock was answered 201, ran, and was gone after a restart.
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    store = LockedStore()
    ran: list[str] = []

    async def job(ctx: RunContext) -> None:
        ran.append(ctx.job_id)

    async with Scheduler(store=store, clock=clock, node_id="n") as sched:
        sched.add_job("kept", trigger=Interval(hours=1), handler=noop)
        await sched.flush()
        store.locked = True
        sched.add_job("added", trigger=Interval(seconds=10), handler=job)
        sched.pause("kept", note="while locked")
        flushed = asyncio.create_task(sched.flush())
        await until_done(flushed, clock, 60)
        assert not flushed.done() and store.refusals > 1
        assert ran == []  # its fires wait until the job is stored (runs reference it)
        assert await store.get_job("added") is None
        store.locked = False
        await until_done(flushed, clock, WRITE_RETRY_MAX_S)
        assert flushed.done()
        added, kept = await store.get_job("added"), await store.get_job("kept")
        assert added is not None and kept is not None
        assert kept.paused and kept.pause_note == "while locked"
        await sched.drain()
        # The fires that waited for the job to be stored: each recorded, the first run and
        # the others skipped by its overlap policy (they were all due by then).
        runs = sorted(await sched.runs("added"), key=lambda r: r.scheduled_for)
        assert [(r.status, r.skip_reason) for r in runs] == [(RunStatus.succeeded, None)] + [
            (RunStatus.skipped, "overlap")
        ] * (len(runs) - 1)
        assert ran == ["added"] and len(runs) > 2
    assert "the store refused a change to the jobs; trying again" in caplog.text
    assert "store write failed" not in caplog.text


async def test_the_first_retry_of_a_refused_change_comes_after_the_first_delay() -> None:
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    store = LockedStore()
    async with Scheduler(store=store, clock=clock, node_id="n") as sched:
        store.locked = True
        sched.add_job("a", trigger=Interval(hours=1), handler=noop)
        for _ in range(3):
            await asyncio.sleep(0)
        assert store.refusals == 1
        await clock.advance(WRITE_RETRY_FIRST_S / 2)
        assert store.refusals == 1
        await clock.advance(WRITE_RETRY_FIRST_S / 2)
        assert store.refusals == 2
        store.locked = False
        await clock.advance(2 * WRITE_RETRY_FIRST_S)
        await sched.flush()
        assert await store.get_job("a") is not None


async def test_a_change_still_refused_when_the_scheduler_stops_is_logged_as_not_saved(
    caplog: Any,
) -> None:
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    store = LockedStore()
    sched = Scheduler(store=store, clock=clock, node_id="n")
    async with sched:
        store.locked = True
        sched.add_job("late", trigger=Interval(hours=1), handler=noop)
        await clock.advance(5)
    assert await store.get_job("late") is None
    assert "a change to the jobs was not saved before the stop" in caplog.text


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


# -- changes other processes make to the store's jobs --------------------------------------
async def until(condition: Any) -> None:
    """Let the loop (and the SQLite store's threads) run until `condition()` holds."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0)


async def test_a_scheduler_applies_the_job_changes_another_process_made_to_its_store(
    tmp_path: Any,
) -> None:
    # Only `agentcron run` watched the store: a Scheduler of one's own kept firing a job
    # `agentcron jobs pause` had paused (the CLI said "paused"), and one it had removed.
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    db = tmp_path / "scheduler.db"
    sched = Scheduler(f"sqlite:///{db}", clock=clock, node_id="n")
    for job_id in ("a", "b"):
        sched.add_job(job_id, trigger=Interval(hours=1), handler="os:getcwd")
    template = Scheduler(node_id="t").add_job("c", trigger=Interval(hours=2), handler="os:getcwd")
    async with sched, SqliteStore(db) as cli:
        await sched.flush()
        await cli.set_paused("a", True, note="from the CLI", actor="cli")
        await cli.delete_job("b", actor="cli")
        await cli.save_job(StoredJob(id="c", definition=job_to_definition(template)), actor="cli")
        await cli.set_state(JOBS_CHANGED_KEY, "token-1")
        await clock.advance(WATCH_JOBS_S)
        await until(lambda: "b" not in {v.id for v in sched.jobs()})
        await until(lambda: "c" in {v.id for v in sched.jobs()})
        assert sched.job("a").paused and sched.job("a").pause_note == "from the CLI"
        assert sched.job("c").job.trigger == Interval(hours=2)


async def test_a_reload_never_undoes_a_change_of_the_scheduler_not_yet_in_the_store() -> None:
    # The reload read the store's jobs while the scheduler's own new job was still queued
    # for writing, took it for one removed from the store, and removed it.
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    store = LockedStore()
    async with Scheduler(store=store, clock=clock, node_id="n") as sched:
        store.locked = True
        sched.add_job("mine", trigger=Interval(hours=1), handler=noop)
        reloading = asyncio.create_task(sched.reload_jobs())
        await until_done(reloading, clock, 5)
        assert not reloading.done()  # it waits for the write
        store.locked = False
        await until_done(reloading, clock, WRITE_RETRY_MAX_S)
        assert reloading.result() == 0
        assert "mine" in {v.id for v in sched.jobs()}
        assert await store.get_job("mine") is not None


async def test_a_memory_store_is_not_watched_and_the_watch_can_be_turned_off() -> None:
    assert MemoryStore.shared is False
    for bad in (0, -1, float("nan"), "2s"):
        try:
            Scheduler(watch_jobs_s=bad)  # type: ignore[arg-type]
        except ValueError as exc:
            assert "watch_jobs_s" in str(exc)
        else:
            raise AssertionError(f"watch_jobs_s={bad!r} was accepted")
    assert Scheduler(watch_jobs_s=None).watch_jobs_s is None


class EmptiedStore(MemoryStore):
    """A store other processes share (`shared`) that can come back empty, as a Redis
    restarted without persistence does, and notices it when asked (`notice_data_loss`)."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.data_losses = 0
        self._lost = False

    def empty(self) -> None:
        MemoryStore.__init__(self)
        self._lost = True

    async def notice_data_loss(self) -> None:
        if self._lost:
            self._lost = False
            self.data_losses += 1


async def test_a_store_that_came_back_empty_is_written_back_to_not_taken_as_jobs_removed() -> None:
    # The job watch (every 2 s) saw the change token gone and reloaded from the empty store
    # before the lease renewal (every `lease_s / 3`) noticed the loss: every job of every
    # node was removed, the write-back had nothing left to write, and nothing fired again.
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    store = EmptiedStore()
    async with Scheduler(store=store, clock=clock, node_id="n", lease_s=600) as sched:
        for job_id in ("a", "b"):
            sched.add_job(job_id, trigger=Interval(hours=1), handler="os:getcwd")
        await sched.flush()
        await store.set_state(JOBS_CHANGED_KEY, "token-1")
        await clock.advance(WATCH_JOBS_S)  # reloaded: nothing changed
        store.empty()
        await clock.advance(WATCH_JOBS_S)  # the token is gone: the watch reloads
        await sched.flush()
        assert {v.id for v in sched.jobs()} == {"a", "b"}
        assert {job.id for job in await store.list_jobs()} == {"a", "b"}
