"""Crowded instants claimed ahead of time (`agentcron.engine.ahead`): claims and `running`
records written before the instant, handlers started only once it has come, and what a
pause, a removal or a stop in between does to the fires already claimed."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from agentcron.engine import Scheduler
from agentcron.engine.active import ActiveRun
from agentcron.engine.ahead import CLAIM_SLICE, MAX_LEAD_S, MIN_FIRES, PER_FIRE_S, lead_s
from agentcron.engine.firing import Claimed
from agentcron.handlers.base import HandlerOutcome, RunContext
from agentcron.models import FireStart, RunQuery, RunRecord, RunStatus
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import CronTrigger, cron_trigger, resolve_tz

from .conftest import T0

EVERY_SECOND = "* * * * * *"
#: The first fire of every-second jobs added at T0.
FIRST = T0 + timedelta(seconds=1)
#: How early an instant with `MIN_FIRES` fires is claimed.
LEAD_S = MIN_FIRES * PER_FIRE_S


class Starts:
    """A handler recording when (on the scheduler's clock) each job's handler started."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.started: dict[str, list[tuple[datetime, datetime]]] = {}

    async def __call__(self, ctx: RunContext) -> None:
        self.started.setdefault(ctx.job_id, []).append((ctx.scheduled_for, self.clock.now()))

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.started.values())


def crowd(sched: Scheduler, handler: Starts, jobs: int = MIN_FIRES) -> list[str]:
    ids = [f"job-{i:04d}" for i in range(jobs)]
    for job_id in ids:
        sched.add_job(job_id, trigger=EVERY_SECOND, handler=handler)
    return ids


async def runs_at(store: MemoryStore, when: datetime) -> list[RunRecord]:
    return [r for r in await store.list_runs(RunQuery(limit=100_000)) if r.scheduled_for == when]


def test_the_lead_is_zero_below_the_crowd_size_and_grows_with_the_fires_up_to_its_cap() -> None:
    assert lead_s(MIN_FIRES - 1) == 0.0
    assert lead_s(MIN_FIRES) == pytest.approx(MIN_FIRES * PER_FIRE_S)
    assert lead_s(10_000) == pytest.approx(0.1)
    assert lead_s(10_000_000) == MAX_LEAD_S


def test_a_store_measured_slower_than_the_default_moves_the_claims_earlier() -> None:
    assert lead_s(1_000, measured_per_fire_s=40e-6) == pytest.approx(1_000 * 60e-6)
    assert lead_s(1_000, measured_per_fire_s=1e-6) == pytest.approx(1_000 * PER_FIRE_S)


async def test_a_crowded_instant_is_claimed_before_it_comes_and_no_handler_starts_early(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    starts = Starts(clock)
    crowd(sched, starts)
    async with sched:
        await clock.advance(1 - LEAD_S / 2)  # inside the lead, before the instant
        early = await runs_at(store, FIRST)
        assert starts.count == 0, list(starts.started.values())[:2]
        await clock.advance(LEAD_S / 2)
        await sched.drain()
        done = await runs_at(store, FIRST)
    assert len(early) == MIN_FIRES
    assert {r.status for r in early} == {RunStatus.running}
    assert starts.count == MIN_FIRES
    assert {started for v in starts.started.values() for _, started in v} == {FIRST}
    assert {r.status for r in done} == {RunStatus.succeeded}
    assert {r.run_id for r in done} == {r.run_id for r in early}


async def test_fires_claimed_ahead_hold_no_run_record_objects_until_their_instant(
    sched: Scheduler, clock: VirtualClock
) -> None:
    """Whatever lives from the claim to the instant is promoted to the garbage collector's
    oldest generation; a `RunRecord` per fire held that long forced a full collection (of
    the whole application's heap) every few seconds at 10,000 jobs. Strings and datetimes
    are not tracked by the collector, a `RunRecord` (a tuple subclass) always is."""
    crowd(sched, Starts(clock))
    async with sched:
        await clock.advance(1 - LEAD_S / 2)  # claimed, waiting for the instant
        gc.collect()
        held = sum(1 for o in gc.get_objects() if type(o) is RunRecord)
        await clock.advance(LEAD_S / 2)
        await sched.drain()
    assert held < MIN_FIRES // 10, held


async def test_each_crowded_instant_claims_into_the_containers_the_last_one_emptied(
    sched: Scheduler, clock: VirtualClock
) -> None:
    """A claim's containers live from the claim to the instant, long enough to be promoted to
    the collector's oldest generation: made anew for each instant (seven per 32 fires), they
    forced a full collection of the whole heap every few seconds at 10,000 jobs. Emptied,
    they hold no job (a removed job is not kept alive by them)."""
    crowd(sched, Starts(clock), 2 * MIN_FIRES)
    async with sched:
        await clock.advance(1)
        await sched.drain()
        kept = [o for o in gc.get_objects() if type(o) is Claimed]
        for _ in range(3):
            await clock.advance(1)
            await sched.drain()
        alive = {id(o) for o in gc.get_objects() if type(o) is Claimed}
    assert kept
    assert alive == {id(o) for o in kept}
    assert not any(o.entries or o.runs or o.admitted or o.won or o.ahead for o in kept)


async def test_the_rest_of_the_process_runs_between_slices_of_a_crowded_instants_claims(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    jobs = 4 * CLAIM_SLICE
    crowd(sched, Starts(clock), jobs)
    seen: list[int] = []  # fires claimed for FIRST, at each turn of the event loop

    async def probe() -> None:
        while not seen or seen[-1] < jobs:
            seen.append(len(await runs_at(store, FIRST)))
            await asyncio.sleep(0)

    async with sched:
        await clock.advance(0.5)
        watching = asyncio.ensure_future(probe())
        await clock.advance(0.5 - lead_s(jobs) / 2)  # inside the lead
        await asyncio.wait_for(watching, timeout=30)
    assert any(0 < count < jobs for count in seen), seen[-5:]


async def test_an_instant_with_fewer_fires_than_the_crowd_size_is_claimed_at_its_time(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    starts = Starts(clock)
    crowd(sched, starts, MIN_FIRES - 1)
    async with sched:
        await clock.advance(1 - LEAD_S / 2)
        early = await runs_at(store, FIRST)
        await clock.advance(LEAD_S / 2)
        await sched.drain()
    assert early == []
    assert starts.count == MIN_FIRES - 1


async def test_each_later_crowded_instant_is_claimed_ahead_as_well(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    starts = Starts(clock)
    ids = crowd(sched, starts)
    async with sched:
        for _ in range(3):  # (a crowded tick takes more turns than one `advance` settles)
            await clock.advance(1)
            await sched.drain()
        await clock.advance(1 - LEAD_S / 2)
        early = await runs_at(store, FIRST + timedelta(seconds=3))
        await clock.advance(LEAD_S / 2)
        await sched.drain()
    assert len(early) == MIN_FIRES
    for job_id in ids:
        assert [(s, at) for s, at in starts.started[job_id]] == [
            (FIRST + timedelta(seconds=k), FIRST + timedelta(seconds=k)) for k in range(4)
        ]


async def test_a_job_paused_after_its_fire_was_claimed_records_it_skipped_and_does_not_run(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    starts = Starts(clock)
    paused, *_ = crowd(sched, starts)
    async with sched:
        await clock.advance(1 - LEAD_S / 2)
        [claimed] = [r for r in await runs_at(store, FIRST) if r.job_id == paused]
        sched.pause(paused)
        await clock.advance(LEAD_S / 2)
        await sched.drain()
        [run] = [r for r in await runs_at(store, FIRST) if r.job_id == paused]
    assert paused not in starts.started
    assert starts.count == MIN_FIRES - 1
    assert (run.run_id, run.status, run.skip_reason) == (
        claimed.run_id,
        RunStatus.skipped,
        "paused",
    )


async def test_a_job_removed_after_its_fire_was_claimed_does_not_run(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    starts = Starts(clock)
    removed, *_ = crowd(sched, starts)
    async with sched:
        await clock.advance(1 - LEAD_S / 2)
        sched.remove(removed)
        await clock.advance(LEAD_S / 2)
        await sched.drain()
        left = [r for r in await runs_at(store, FIRST) if r.job_id == removed]
    assert removed not in starts.started
    assert starts.count == MIN_FIRES - 1
    assert left == []


async def test_a_job_updated_after_its_fire_was_claimed_runs_its_new_handler_for_it(
    sched: Scheduler, clock: VirtualClock
) -> None:
    old, new = Starts(clock), Starts(clock)
    crowd(sched, old)
    async with sched:
        await clock.advance(1 - LEAD_S / 2)
        sched.update("job-0000", handler=new)
        await clock.advance(LEAD_S / 2)
        await sched.drain()
    assert "job-0000" not in old.started
    assert new.started == {"job-0000": [(FIRST, FIRST)]}
    assert old.count == MIN_FIRES - 1


async def test_stopping_before_a_claimed_instant_records_its_fires_cancelled_at_once(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    sched = make_scheduler()
    starts = Starts(clock)
    crowd(sched, starts)
    await sched.start()
    await clock.advance(1 - LEAD_S / 2)
    # A grace period on the virtual clock that nobody advances: stop() must not wait for
    # the instant to come (nor for the grace) to end fires that never began.
    await sched.stop(grace_s=30)
    runs = await runs_at(store, FIRST)
    assert starts.count == 0
    assert len(runs) == MIN_FIRES
    assert {r.status for r in runs} == {RunStatus.cancelled}
    assert all("scheduler stopped" in (r.error or "") for r in runs)


@pytest.mark.parametrize(("policy", "ran"), [("skip", False), ("run_once", True)])
async def test_a_machine_asleep_through_a_claimed_instant_applies_each_jobs_misfire_policy(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore, policy: str, ran: bool
) -> None:
    starts = Starts(clock)
    for i in range(MIN_FIRES):
        sched.add_job(f"job-{i:04d}", trigger=EVERY_SECOND, handler=starts, misfire=policy)
    async with sched:
        await clock.advance(1 - LEAD_S / 2)
        await clock.suspend(60)  # the lid closes between the claims and the instant
        await sched.drain()
        runs = await runs_at(store, FIRST)
    assert len(runs) == MIN_FIRES
    first = [at for v in starts.started.values() for fire, at in v if fire == FIRST]
    if ran:
        assert len(first) == MIN_FIRES  # late, once each (never a burst)
        assert {r.status for r in runs} == {RunStatus.succeeded}
    else:
        assert first == []
        assert {(r.status, r.skip_reason) for r in runs} == {(RunStatus.skipped, "misfire")}


class SlowClaims(MemoryStore):
    """A real `MemoryStore` whose fire claims each take `claim_s` on the scheduler's clock."""

    def __init__(self, clock: VirtualClock, claim_s: float) -> None:
        super().__init__()
        self.clock, self.claim_s = clock, claim_s
        self.claimed_at: list[datetime] = []

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        await self.clock.sleep(self.claim_s)
        self.claimed_at.append(self.clock.now())
        return await super().start_fires(fires, node_id, now=now)


async def test_claims_still_unwritten_when_the_instant_comes_are_claimed_and_started_after_it(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # Each claim of 32 fires takes 1 ms; the 16 claims of 500 fires do not fit in a 5 ms lead.
    store = SlowClaims(clock, claim_s=0.001)
    sched = make_scheduler(store=store)
    starts = Starts(clock)
    crowd(sched, starts)
    async with sched:
        await clock.advance(1 - 2 * LEAD_S)
        for _ in range(40):
            await clock.advance(0.001)
        await sched.drain()
        runs = await runs_at(store, FIRST)
    assert min(store.claimed_at) < FIRST < max(store.claimed_at)
    assert starts.count == MIN_FIRES  # each once
    started = [at for v in starts.started.values() for _, at in v]
    assert min(started) >= FIRST
    # The fires claimed in time start at the instant, not after the last claim.
    assert min(started) < max(store.claimed_at)
    assert len(runs) == MIN_FIRES and {r.status for r in runs} == {RunStatus.succeeded}


class BusyClock(VirtualClock):
    """A virtual clock whose monotonic reading also counts the time code "spends" between
    two turns of the event loop (`spend`): the virtual wall clock stands still meanwhile,
    as a real one does not, so this is what the engine sees of work that takes CPU time."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.spent_s = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.spent_s


class CostlyTrigger:
    """An every-second trigger whose next fire takes `cost_s` of `clock`'s time to find."""

    def __init__(self, clock: BusyClock, cost_s: float) -> None:
        self.clock, self.cost_s = clock, cost_s
        self.inner: CronTrigger = cron_trigger(EVERY_SECOND, resolve_tz("UTC"))

    def next_fire(self, after: datetime) -> datetime | None:
        self.clock.spent_s += self.cost_s
        return self.inner.next_fire(after)

    def to_dict(self) -> dict[str, object]:
        return self.inner.to_dict()

    def describe(self) -> str:
        return "every second, slowly"


async def test_the_time_taken_to_schedule_a_crowded_instants_jobs_moves_the_next_one_earlier(
    make_scheduler: Callable[..., Scheduler], store: MemoryStore
) -> None:
    # Finding each job's next fire takes 20 µs, twice the default lead per fire: the lead
    # of the next crowded instant must cover it (1.5 x 20 µs per fire), not only the claims.
    clock = BusyClock(T0)
    sched = make_scheduler(clock=clock)
    starts = Starts(clock)
    trigger = CostlyTrigger(clock, cost_s=20e-6)
    for i in range(MIN_FIRES):
        sched.add_job(f"job-{i:04d}", trigger=trigger, handler=starts)
    second = FIRST + timedelta(seconds=1)
    async with sched:
        await clock.advance(1)
        await sched.drain()
        await clock.advance(1 - 1.5 * 20e-6 * MIN_FIRES * 0.9)  # inside the longer lead
        early = await runs_at(store, second)
        await clock.advance(1.5 * 20e-6 * MIN_FIRES)
        await sched.drain()
    assert len(early) == MIN_FIRES and {r.status for r in early} == {RunStatus.running}
    assert starts.count == 2 * MIN_FIRES


async def test_a_job_busy_when_its_fire_is_claimed_but_free_by_the_instant_runs_it(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    # Each run takes 0.998 s: it is still running when the next second is claimed (5 ms
    # ahead) and over before that second comes. Overlap decides at the instant, as a tick
    # does, so `skip` runs every fire.
    ended = Starts(clock)

    async def almost_a_second(ctx: RunContext) -> None:
        await clock.sleep(0.998)
        await ended(ctx)

    for i in range(MIN_FIRES):
        sched.add_job(f"job-{i:04d}", trigger=EVERY_SECOND, handler=almost_a_second, overlap="skip")
    second = FIRST + timedelta(seconds=1)
    async with sched:
        await clock.advance(2.999)
        await sched.drain()
        runs = await runs_at(store, second)
    assert {(r.status, r.skip_reason) for r in runs} == {(RunStatus.succeeded, None)}
    assert len(runs) == MIN_FIRES and ended.count == 2 * MIN_FIRES


def busy_crowd(sched: Scheduler, started: Starts, **options: Any) -> None:
    """`MIN_FIRES` jobs firing at seconds 1 and 2 of each minute, each run 1.5 s long: busy
    when their second fire is claimed, ahead of it."""

    async def long_run(ctx: RunContext) -> None:
        await started(ctx)
        await started.clock.sleep(1.5)

    for i in range(MIN_FIRES):
        sched.add_job(f"job-{i:04d}", trigger="1-2 * * * * *", handler=long_run, **options)


async def test_a_busy_job_removed_after_its_fire_was_claimed_does_not_run_it(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    # Busy at the claim of its second fire (overlap `queue`): the fire is decided at the
    # instant, and by then the job is gone.
    started = Starts(clock)
    busy_crowd(sched, started, overlap="queue")
    async with sched:
        await clock.advance(2 - LEAD_S / 2)  # the second instant is claimed
        sched.remove("job-0000")
        await clock.advance(5)
        await sched.drain()
    assert [s for s, _ in started.started["job-0000"]] == [FIRST]
    assert [s for s, _ in started.started["job-0001"]] == [FIRST, FIRST + timedelta(seconds=1)]


async def test_a_busy_jobs_fire_claimed_ahead_and_slept_through_is_skipped_by_misfire_skip(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    # Busy at the claim (overlap `allow`: the fire is decided at the instant); the machine
    # sleeps through the instant, so misfire `skip` skips the fire, as for an idle job.
    started = Starts(clock)
    busy_crowd(sched, started, overlap="allow", misfire="skip")
    async with sched:
        await clock.advance(2 - LEAD_S / 2)
        await clock.suspend(30)  # the lid closes between the claims and the instant
        await clock.advance(5)
        await sched.drain()
        runs = await runs_at(store, FIRST + timedelta(seconds=1))
    assert {(r.status, r.skip_reason) for r in runs} == {(RunStatus.skipped, "misfire")}
    assert len(runs) == MIN_FIRES and started.count == MIN_FIRES


# -- the successes of a crowded instant, recorded once its last fire is launched ----------
class WritesAfter(MemoryStore):
    """A real `MemoryStore` that notes, at each write of succeeded runs, how many handlers
    had started by then."""

    def __init__(self, starts: Starts) -> None:
        super().__init__()
        self.starts = starts
        self.started_at_writes: list[int] = []

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        if any(r.status is RunStatus.succeeded for r in runs):
            self.started_at_writes.append(self.starts.count)
        return await super().record_runs(runs)


async def test_a_crowded_instants_successes_are_written_only_once_its_last_handler_started(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    """Writing each turn's successes between the instant's launches delayed every handler
    after them: about a sixth of the work done per fire before the last one starts."""
    jobs = 2 * MIN_FIRES
    starts = Starts(clock)
    store = WritesAfter(starts)
    sched = make_scheduler(store=store)
    crowd(sched, starts, jobs)
    async with sched:
        await clock.advance(1)
        await sched.drain()
        runs = await runs_at(store, FIRST)
    assert store.started_at_writes
    assert min(store.started_at_writes) == jobs
    assert len(runs) == jobs and {r.status for r in runs} == {RunStatus.succeeded}


async def test_a_job_whose_run_succeeded_in_a_crowded_instant_stays_busy_until_it_is_recorded(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    """Its `ActiveRun` is let go at once (held that long, it was promoted to the collector's
    oldest generation), but the job counts as busy as before: its next fire is not started
    before its last run's result is written (under a slow store, the next tick skips it)."""
    jobs = 2 * MIN_FIRES
    ids = crowd(sched, Starts(clock), jobs)
    first = sched._entries[ids[0]]
    seen: list[tuple[int, int, int]] = []

    async def last(ctx: RunContext) -> None:
        written = len([r for r in await runs_at(store, FIRST) if r.status is RunStatus.succeeded])
        seen.append((len(first.active), first.busy, written))

    sched.update(ids[-1], handler=last)
    async with sched:
        await clock.advance(1)
        await sched.drain()
        after = first.busy
    assert seen == [(0, 1, 0)]
    assert after == 0


async def test_records_written_after_a_crowded_instant_hold_each_runs_own_fields(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    async def tells(ctx: RunContext) -> HandlerOutcome:
        await asyncio.sleep(0)  # ends in a later turn than it started
        return HandlerOutcome(output_tail=f"done {ctx.job_id} at {ctx.attempt}")

    ids = crowd(sched, Starts(clock))
    for job_id in ids:
        sched.update(job_id, handler=tells)
    async with sched:
        await clock.advance(1 - LEAD_S / 2)
        running = {r.run_id: r for r in await runs_at(store, FIRST)}
        await clock.advance(LEAD_S / 2)
        await sched.drain()
        runs = await runs_at(store, FIRST)
    assert {r.run_id for r in runs} == set(running)
    for run in runs:
        claimed = running[run.run_id]
        assert (run.status, run.error, run.skip_reason, run.lease_expires_at) == (
            RunStatus.succeeded,
            None,
            None,
            None,
        )
        assert (run.job_id, run.scheduled_for, run.attempt, run.node_id, run.fence) == (
            claimed.job_id,
            FIRST,
            1,
            "node-a",
            claimed.fence,
        )
        assert (run.started_at, run.finished_at) == (FIRST, FIRST)
        assert run.output_tail == f"done {run.job_id} at 1"
        assert run.queue_job_id is None


async def test_stopping_in_the_middle_of_a_crowded_instant_records_every_run_that_ended(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    jobs = 2 * MIN_FIRES
    starts = Starts(clock)
    sched = make_scheduler()
    stopping: list[asyncio.Future[None]] = []

    async def stops_at_the_hundredth(ctx: RunContext) -> None:
        await starts(ctx)
        if starts.count == 100:
            stopping.append(asyncio.ensure_future(sched.stop(grace_s=0)))

    crowd(sched, starts, jobs)
    for job_id in list(sched._entries):
        sched.update(job_id, handler=stops_at_the_hundredth)
    await sched.start()
    await clock.advance(1)
    await asyncio.wait_for(stopping[0], timeout=30)
    runs = await runs_at(store, FIRST)
    ran = set(starts.started)
    assert 100 <= len(ran) < jobs
    assert len(runs) == jobs
    assert {r.job_id for r in runs if r.status is RunStatus.succeeded} == ran
    assert {r.status for r in runs if r.job_id not in ran} == {RunStatus.cancelled}


async def test_runs_held_until_a_crowded_instant_ends_keep_no_record_or_run_objects_alive(
    sched: Scheduler, clock: VirtualClock
) -> None:
    """What lives until the instant's last launch is promoted to the collector's oldest
    generation unless the collector stops tracking it: the held runs are plain tuples of
    strings, datetimes and ints, never a `RunRecord` or an `ActiveRun` each."""
    jobs = 2 * MIN_FIRES
    ids = crowd(sched, Starts(clock), jobs)
    alive: list[int] = []

    async def last(ctx: RunContext) -> None:
        gc.collect()
        alive.append(sum(1 for o in gc.get_objects() if type(o) in (RunRecord, ActiveRun)))

    sched.update(ids[-1], handler=last)
    async with sched:
        await clock.advance(1)
        await sched.drain()
    assert alive and alive[0] < jobs // 10, alive


async def test_drain_waits_for_a_crowded_instants_fires_still_being_claimed_after_it_came(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    """At the instant, the fires not claimed in time are claimed and launched one chunk after
    another; while a claim is being written no run of the instant may be pending, and
    `drain()` must not take that for the end of the instant."""
    store = SlowClaims(clock, claim_s=0.001)  # 16 claims of 1 ms: not all before the instant
    sched = make_scheduler(store=store)
    starts = Starts(clock)
    crowd(sched, starts)
    async with sched:
        await clock.advance(1 - 2 * LEAD_S)
        await clock.advance(2 * LEAD_S)  # the instant: some claims still to be written
        assert len(store.claimed_at) < MIN_FIRES // 32
        draining = asyncio.ensure_future(sched.drain())
        for _ in range(100):  # the claims' time passes, 1 ms at a time
            await asyncio.sleep(0)
            if draining.done():
                break
            await clock.advance(0.001)
        await draining
        runs = await runs_at(store, FIRST)
        for _ in range(40):  # whatever drain() did not wait for ends before the stop
            await clock.advance(0.001)
    assert len(runs) == MIN_FIRES and {r.status for r in runs} == {RunStatus.succeeded}
