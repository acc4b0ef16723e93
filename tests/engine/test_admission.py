"""How a tick admits its fires: claims and `running` records in one store call, in chunks,
and runs admitted but not yet begun when they are cancelled."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from agentcron.engine import Scheduler
from agentcron.engine.active import ActiveRun
from agentcron.engine.runner import Runner, _ended
from agentcron.events import Event, EventBus
from agentcron.handlers.base import RunContext, engine_context
from agentcron.jobs import build_job
from agentcron.models import FireStart, RunQuery, RunRecord, RunStatus
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

from .conftest import T0, all_runs, noop, wait_real

EVERY_SECOND = "* * * * * *"


def held() -> tuple[asyncio.Event, Callable[[], Awaitable[None]]]:
    """A handler that keeps its job busy until the event is set, and the event."""
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()

    return release, slow


class CountingStore(MemoryStore):
    """A real `MemoryStore` that also keeps what the engine asked of it; the calls named in
    `held` (`start_fires`, `get_job`) wait for `gate` (a slow store)."""

    def __init__(self, *held: str) -> None:
        super().__init__()
        self.batches: list[list[FireStart]] = []
        self.recorded: list[RunRecord] = []
        self.recorded_together: list[list[RunRecord]] = []
        self.held = set(held)
        self.gate = asyncio.Event()

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        self.batches.append(list(fires))
        if "start_fires" in self.held:
            await self.gate.wait()
        return await super().start_fires(fires, node_id, now=now)

    async def get_job(self, job_id: str) -> Any:
        if "get_job" in self.held:  # the engine's first step in storing a new job
            await self.gate.wait()
        return await super().get_job(job_id)

    async def record_run(self, run: RunRecord) -> bool:
        self.recorded.append(run)
        return await super().record_run(run)

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        self.recorded_together.append(list(runs))
        return await super().record_runs(runs)


async def test_idle_jobs_due_together_start_in_one_store_call_and_end_in_another(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = CountingStore()
    sched = make_scheduler(store=store)
    for name in ("digest", "backup", "sync"):
        sched.add_job(name, trigger=EVERY_SECOND, handler=noop)
    async with sched:
        await sched.flush()
        await clock.advance(1)
        await sched.drain()
        [batch] = store.batches
        assert [f.job_id for f in batch] == ["digest", "backup", "sync"]
        assert all(f.run is not None and f.run.status == RunStatus.running for f in batch)
        # The `running` records came with the claims, the final ones together after.
        assert store.recorded == []
        [finals] = store.recorded_together
        assert [(r.job_id, str(r.status)) for r in finals] == [
            ("digest", "succeeded"),
            ("backup", "succeeded"),
            ("sync", "succeeded"),
        ]
        for fire in batch:
            assert fire.run is not None
            [run] = await all_runs(sched, fire.job_id)
            assert (run.run_id, run.status) == (fire.run.run_id, RunStatus.succeeded)
        await sched.stop(grace_s=0)


async def test_the_scheduler_lets_go_of_the_task_of_a_run_once_it_is_recorded(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # Under an eager task factory a run that ended in its first step was kept in the
    # scheduler's set of tasks for good: 10,000 tasks a second at 10,000 jobs.
    tasks: list[weakref.ref[asyncio.Task[Any]]] = []

    async def note_task() -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(weakref.ref(task))

    sched = make_scheduler()
    for name in ("digest", "backup"):
        sched.add_job(name, trigger=EVERY_SECOND, handler=note_task)
    async with sched:
        await sched.flush()
        await clock.advance(1)
        await sched.drain()
        gc.collect()
        assert len(tasks) == 2
        assert [ref() for ref in tasks] == [None, None]
        await sched.stop(grace_s=0)


async def test_a_job_that_is_still_running_goes_through_its_overlap_policy_not_the_batch(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = CountingStore()
    sched = make_scheduler(store=store)
    release, slow = held()
    sched.add_job("slow", trigger=EVERY_SECOND, handler=slow, overlap="queue")
    async with sched:
        await sched.flush()
        await clock.advance(1)
        await clock.advance(1)  # the first run still holds the job: the second one waits
        assert [f.run is not None for batch in store.batches for f in batch] == [True, False]
        release.set()
        await sched.drain()
        runs = await all_runs(sched, "slow")
        assert [str(r.status) for r in runs] == ["succeeded", "succeeded"]
        await sched.stop(grace_s=0)


async def test_a_tick_of_more_fires_than_one_chunk_runs_each_fire_once_in_chunks(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = CountingStore()
    sched = make_scheduler(store=store)
    count = 2 * MemoryStore.fire_batch + 10
    for i in range(count):
        sched.add_job(f"job-{i}", trigger=EVERY_SECOND, handler=noop)
    async with sched:
        await sched.flush()
        await clock.advance(1)
        await sched.drain()
        assert [len(b) for b in store.batches] == [store.fire_batch, store.fire_batch, 10]
        succeeded = await store.count_runs(RunQuery(statuses=(RunStatus.succeeded,)))
        assert succeeded == count
        await sched.stop(grace_s=0)


async def test_a_job_rescheduled_while_an_earlier_chunk_runs_is_not_fired_early(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler()
    count = 2 * MemoryStore.fire_batch + 10
    last = f"job-{count - 1}"  # in the last chunk
    for i in range(count):
        sched.add_job(f"job-{i}", trigger=EVERY_SECOND, handler=noop)

    def move_the_last_job(event: Event) -> None:
        if event.type == "run.started" and sched.job(last).job.trigger != "0 0 1 1 *":
            sched.update(last, trigger="0 0 1 1 *")  # next: 1 January 2027

    sched.events.subscribe(move_the_last_job)
    async with sched:
        await sched.flush()
        await clock.advance(1)
        await sched.drain()
        assert await all_runs(sched, last) == []
        view = sched.job(last)
        assert view.next_run is not None and view.next_run.year == 2027
        await sched.stop(grace_s=0)


def a_runner(store: MemoryStore, clock: VirtualClock) -> Runner:
    return Runner(
        store=store,
        clock=clock,
        events=EventBus(),
        node_id="node-a",
        lease_s=60.0,
        stop_grace_s=1.0,
        rng=random.Random(0),
    )


async def test_a_run_cancelled_before_its_task_began_records_cancelled_not_running() -> None:
    store, clock = MemoryStore(), VirtualClock(T0)
    runner = a_runner(store, clock)
    calls: list[int] = []

    async def handler() -> None:
        calls.append(1)

    job = build_job("digest", trigger=EVERY_SECOND, handler=handler)
    fire = T0 + timedelta(seconds=1)
    active = ActiveRun(run_id="r1", scheduled_for=fire, started=False)
    active.record = runner.running_record(job, "r1", fire, clock.now())
    await store.start_fires(
        [FireStart("digest", fire, None, fire, active.record)], "node-a", now=clock.now()
    )
    # A task that has not begun, as the tick makes them on the default loop (an eager task
    # factory would have run it by now).
    task: asyncio.Task[Any] = asyncio.Task(runner.run(job, active, fire))
    active.task = task
    active.cancel("job removed")  # before the task's first step
    assert not task.cancelled()
    active.started = True
    final = await task
    assert calls == []
    assert (final.status, final.error) == (RunStatus.cancelled, "cancelled: job removed")
    assert await store.get_run("r1") == final
    assert await store.interrupt_expired(T0 + timedelta(days=1)) == []  # no lease left


class GatedStore(MemoryStore):
    """A real `MemoryStore` whose `record_runs` waits for `gate` (or fails, if told to)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail = False

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        await self.gate.wait()
        if self.fail:
            raise OSError("disk full")
        return await super().record_runs(runs)


async def test_a_run_that_succeeded_stays_active_until_its_result_is_recorded(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = GatedStore()
    sched = make_scheduler(store=store)
    seen: list[str] = []
    sched.events.subscribe(lambda event: seen.append(event.type))
    sched.add_job("digest", trigger=EVERY_SECOND, handler=noop)
    async with sched:
        await sched.flush()
        await clock.advance(1)
        assert sched.job("digest").active_runs == 1
        [run] = await all_runs(sched, "digest")
        assert run.status == RunStatus.running
        await sched.events.drain()
        assert "run.succeeded" not in seen
        store.gate.set()
        await sched.drain()
        await sched.events.drain()
        assert sched.job("digest").active_runs == 0
        [run] = await all_runs(sched, "digest")
        assert run.status == RunStatus.succeeded
        assert seen.count("run.succeeded") == 1
        await sched.stop(grace_s=0)


async def test_stop_waits_for_results_being_recorded_instead_of_cancelling_them(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = GatedStore()
    sched = make_scheduler(store=store)
    sched.add_job("digest", trigger=EVERY_SECOND, handler=noop)
    await sched.start()
    await sched.flush()
    await clock.advance(1)
    stopping = asyncio.ensure_future(sched.stop(grace_s=0))
    await asyncio.sleep(0)
    assert not stopping.done()
    store.gate.set()
    await stopping
    [run] = await store.list_runs(RunQuery(job_id="digest"))
    assert run.status == RunStatus.succeeded


async def test_results_the_store_could_not_record_are_logged_and_the_runs_still_end(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, caplog: Any
) -> None:
    store = GatedStore()
    store.fail = True
    store.gate.set()
    sched = make_scheduler(store=store)
    for name in ("digest", "backup"):
        sched.add_job(name, trigger=EVERY_SECOND, handler=noop)
    async with sched:
        await sched.flush()
        await clock.advance(1)
        await sched.drain()
        assert "could not record the end of 2 run(s)" in caplog.text
        assert [sched.job(name).active_runs for name in ("digest", "backup")] == [0, 0]
        await clock.advance(1)  # the next fires run as usual
        await sched.drain()
        assert len(await all_runs(sched, "digest")) == 2
        await sched.stop(grace_s=0)


def test_fire_starts_have_the_fields_the_tick_builds_them_from_in_order() -> None:
    # `Firing._start_fires` builds each `FireStart` from its five fields in order (no
    # keyword `__new__`); a field added to or moved in it must show up here.
    assert FireStart._fields == ("job_id", "scheduled_for", "next_run", "last_fire", "run")


def test_records_built_on_the_hot_path_equal_the_keyword_built_ones() -> None:
    # The runner builds records from their fields in order (no keyword `__new__`); a field
    # added to or moved in `RunRecord` must show up here, not as a shifted record.
    runner = a_runner(MemoryStore(), VirtualClock(T0))
    job = build_job("digest", trigger=EVERY_SECOND, handler=noop)
    at = T0 + timedelta(seconds=1)
    running = runner.running_record(job, "run-1", T0, at, attempt=2)
    assert running == RunRecord(
        run_id="run-1",
        job_id="digest",
        scheduled_for=T0,
        status=RunStatus.running,
        attempt=2,
        started_at=at,
        node_id="node-a",
        lease_expires_at=at + timedelta(seconds=60),
    )
    taken_over = running.evolve(fence=3, queue_job_id="q-7", skip_reason=None)
    end = at + timedelta(seconds=2)
    assert _ended(taken_over, RunStatus.failed, end, error="boom", output_tail="tail") == (
        RunRecord(
            run_id="run-1",
            job_id="digest",
            scheduled_for=T0,
            status=RunStatus.failed,
            attempt=2,
            started_at=at,
            finished_at=end,
            error="boom",
            output_tail="tail",
            node_id="node-a",
            fence=3,
            queue_job_id="q-7",
        )
    )
    assert _ended(running, RunStatus.succeeded, end, started_at=end).started_at == end


def test_the_hot_path_run_context_makes_its_cancel_event_once_when_first_read() -> None:
    log = logging.getLogger("agentcron.job")
    ctx = engine_context("digest", "run-1", T0, 1, 0.0, "node-a", log)
    assert "cancelled" not in vars(ctx) and not ctx.cancel_requested
    # Read at once from many threads (a sync handler and the loop): one event for all.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        events = list(pool.map(lambda _: ctx.cancelled, range(64)))
    assert all(event is events[0] for event in events) and ctx.cancelled is events[0]
    ctx.cancelled.set()
    assert ctx.cancel_requested
    with pytest.raises(AttributeError, match="no attribute 'schedule_for'"):
        ctx.schedule_for  # type: ignore[attr-defined]  # noqa: B018


def test_the_hot_path_run_context_equals_the_keyword_built_one() -> None:
    log = logging.getLogger("agentcron.job")
    fast = engine_context("digest", "run-1", T0, 2, 0.25, "node-a", log)
    made = RunContext(
        job_id="digest",
        run_id="run-1",
        scheduled_for=T0,
        attempt=2,
        lateness_s=0.25,
        node_id="node-a",
        logger=log,
        cancelled=fast.cancelled,
    )
    assert fast == made
    # No field more or less than the constructor sets; and where `progress()` goes.
    assert vars(fast) == {**vars(made), "_reporter": None}
    assert not fast.cancel_requested and fast.progress_callback is None
    assert fast.cancelled is not engine_context("d", "r", T0, 1, 0.0, "n", log).cancelled
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.attempt = 3  # type: ignore[misc]


async def test_fires_a_busy_job_skips_are_recorded_with_their_claims_in_one_store_call(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # A store that falls behind keeps runs active, so the next tick skips their fires; a
    # write per skip would leave it further behind each tick.
    store = CountingStore()
    sched = make_scheduler(store=store)
    release, slow = held()
    skipped: list[str] = []
    sched.events.subscribe(lambda event: skipped.append(event.job_id), types=["run.skipped"])
    names = [f"job-{i}" for i in range(store.fire_batch)]  # one chunk of a tick
    for name in names:
        sched.add_job(name, trigger=EVERY_SECOND, handler=slow, overlap="skip")
    async with sched:
        await sched.flush()
        await clock.advance(1)
        await clock.advance(1)  # every job still runs its first fire
        await sched.events.drain()
        assert store.recorded == []
        assert store.recorded_together == []
        _, second = store.batches
        assert [f.job_id for f in second] == names
        assert all(f.run is not None for f in second)
        assert {(str(f.run.status), f.run.skip_reason) for f in second if f.run} == {
            ("skipped", "overlap")
        }
        assert skipped == names
        release.set()
        await sched.drain()
        for name in names:
            runs = await all_runs(sched, name)
            assert [(str(r.status), r.skip_reason) for r in runs] == [
                ("succeeded", None),
                ("skipped", "overlap"),
            ]
        await sched.stop(grace_s=0)


async def test_skips_decided_after_their_claims_in_one_turn_are_written_in_one_store_call(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = CountingStore()
    sched = make_scheduler(store=store)
    release, slow = held()
    for name in ("digest", "backup"):
        sched.add_job(name, trigger=EVERY_SECOND, handler=slow, overlap="buffer_one")
    async with sched:
        await sched.flush()
        for _ in range(3):  # run, wait, then the newer fire skips the waiting one
            await clock.advance(1)
        await wait_real(lambda: len(store.recorded_together) == 1)
        [skips] = store.recorded_together
        assert [(r.job_id, r.skip_reason) for r in skips] == [
            ("digest", "overlap"),
            ("backup", "overlap"),
        ]
        assert store.recorded == []
        release.set()
        await sched.drain()
        await sched.stop(grace_s=0)


async def test_skips_the_store_could_not_record_are_logged_and_firing_goes_on(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, caplog: Any
) -> None:
    store = GatedStore()
    store.fail = True
    store.gate.set()
    sched = make_scheduler(store=store)
    release, slow = held()
    for name in ("digest", "backup"):
        sched.add_job(name, trigger=EVERY_SECOND, handler=slow, overlap="buffer_one")
    async with sched:
        await sched.flush()
        for _ in range(3):  # the waiting fires are skipped, and the write of the skips fails
            await clock.advance(1)
        await wait_real(lambda: caplog.text.count("disk full") >= 2)
        store.fail = False
        release.set()
        await sched.drain()
        await clock.advance(1)  # the next fires run as usual
        await sched.drain()
        for name in ("digest", "backup"):
            runs = await all_runs(sched, name)
            assert [str(r.status) for r in runs] == ["succeeded"] * 3  # no skip recorded
        await sched.stop(grace_s=0)


async def test_fires_of_jobs_added_while_running_wait_for_their_jobs_then_start_together(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = CountingStore("get_job")
    sched = make_scheduler(store=store)
    names = ["digest", "backup", "sync"]
    async with sched:
        for name in names:
            sched.add_job(name, trigger=EVERY_SECOND, handler=noop)
        await clock.advance(1)  # due before the store has the jobs
        assert store.batches == []
        store.gate.set()
        await sched.drain()
        [batch] = store.batches
        assert [f.job_id for f in batch] == names
        assert all(f.run is not None for f in batch)
        for name in names:
            assert [str(r.status) for r in await all_runs(sched, name)] == ["succeeded"]
        await sched.stop(grace_s=0)


async def test_a_store_that_cannot_keep_up_makes_the_loop_late_and_misfire_folds_the_fires(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = CountingStore("start_fires")
    sched = make_scheduler(store=store)
    missed: list[Event] = []
    sched.events.subscribe(missed.append, types=["run.missed"])
    sched.add_job("digest", trigger=EVERY_SECOND, handler=noop)
    async with sched:
        await sched.flush()
        for _ in range(10):  # the first tick's claims are not written: no tick begins
            await clock.advance(1)
        assert len(store.batches) == 1
        store.gate.set()
        await sched.drain()
        await sched.events.drain()
        runs = await all_runs(sched, "digest")
        # The fires it fell behind on are folded (run_once), the two within the grace too
        # (only the newest is on time): two runs, not ten.
        assert [(r.scheduled_for - T0).seconds for r in runs] == [1, 10]
        assert [event.missed for event in missed] == [8]  # type: ignore[attr-defined]
        await sched.stop(grace_s=0)


async def test_a_stop_while_a_tick_is_claiming_leaves_no_job_counting_a_run_that_never_began(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = CountingStore("start_fires")
    sched = make_scheduler(store=store)
    for name in ("digest", "backup"):
        sched.add_job(name, trigger=EVERY_SECOND, handler=noop)
    await sched.start()
    await sched.flush()
    await clock.advance(1)  # the tick's claim waits for the store
    assert [v.active_runs for v in sched.jobs()] == [1, 1]
    await sched.stop(grace_s=0)  # cancels the claim in flight
    assert [v.active_runs for v in sched.jobs()] == [0, 0]
