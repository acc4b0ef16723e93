"""One fire, from claim to final record: the admission half of `Scheduler` (a mixin).

Order per fire (each step's invariant): claim the occurrence in the store (exactly one node
gets it), write the job's `last_fire` before anything runs, then decide (a tick prepares the
decision for fires that start or are skipped at once, and writes their first record with the
claim; it takes effect only for a fire whose claim is won): paused -> skipped;
overlap policy against the job's active runs (a run waiting for a retry is active) ->
run / skip / queue / buffer / delay / replace; circuit breaker at the moment a run would
start -> skipped(circuit_open); then the `Runner` executes the attempts. Leases of active
runs are renewed by one maintenance task; expired ones (another node died) are taken over
and retried by the job's retry policy with the same occurrence key. An instant with
hundreds of fires is claimed ahead of its time and launched when it comes (`engine.ahead`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from agentcron.engine.active import NO_RUNS, ActiveRun, JobEntry, PendingFire
from agentcron.engine.errors import RunInterruptedError
from agentcron.engine.persistence import (
    StoreSync,
    store_available,
    store_data_losses,
    wait_store,
)
from agentcron.engine.runner import Runner, describe_error, record_from_held
from agentcron.events import (
    CircuitClosed,
    CircuitHalfOpen,
    CircuitOpened,
    EventBus,
    RunCancelled,
    RunInterrupted,
    RunProgress,
    RunSkipped,
)
from agentcron.handlers.base import RunContext
from agentcron.jobs import Job
from agentcron.models import (
    FireStart,
    RunRecord,
    RunStatus,
    SkipReason,
    new_run_id,
    new_run_ids,
)
from agentcron.policies.circuit import Circuit, CircuitBreaker
from agentcron.policies.overlap import OverlapAction
from agentcron.tasks import map_in_chunks, yield_to_creator

__all__ = ["Claimed", "Dispatch", "DueFire", "Firing"]

log = logging.getLogger("agentcron.engine")

#: The queue seam: `await dispatch(job, scheduled_for, run)` hands the fire to a queue and
#: returns the queue job id. Installed with `Scheduler(dispatch=...)` for jobs with `queue=`.
Dispatch = Callable[[Job, datetime, RunRecord], Awaitable[str | None]]


#: An on-time fire found by the loop, admitted with the rest of its tick: (entry, fire,
#: planned start). A plain tuple: one is built per fire, a NamedTuple costs 0.3 µs more.
DueFire = tuple[JobEntry, datetime, datetime]


#: Enum members the hot path compares with, read once: on Python 3.11 reading a member
#: through its class runs a Python-level descriptor (about 1,000 instructions each time).
_RUN = OverlapAction.run
_SKIP = OverlapAction.skip
_SUCCEEDED = RunStatus.succeeded
_PAUSED = SkipReason.paused
_OVERLAP = SkipReason.overlap


def _overlap_action(entry: JobEntry) -> OverlapAction:
    """What the job's overlap policy does with a new fire now (an idle job: run)."""
    if not entry.active and not entry.starting:  # idle: every policy runs it
        return _RUN
    return entry.job.overlap.decide(
        active=entry.busy,
        pending=entry.pending_count,
        consecutive_skips=entry.consecutive_skips,
    )


#: `FireStart` from its five fields in order, without the generated `__new__` (a Python
#: function; once per fire), as `runner._new_record` does for `RunRecord`.
_new_start = tuple.__new__
#: How many instants, 1 µs apart, a manual run tries to claim (`Firing._claim_manual`).
_MANUAL_TRIES = 1000
_ONE_US = timedelta(microseconds=1)
#: At most this many emptied `Claimed` are kept (`Firing._claimed_spare`): an instant of
#: 32,768 fires claimed ahead, in chunks of 32.
_SPARE_CLAIMED = 1024


def _still_ours(stored: RunRecord, record: RunRecord, node_id: str) -> bool:
    """Whether `stored` is still this node's `running` record of the run, at its fence (no
    other node took it over: taking over raises the fence)."""
    return (
        stored.status == RunStatus.running
        and stored.node_id == node_id
        and stored.fence == record.fence
    )


def _breaker_settings(config: CircuitBreaker) -> str:
    return (
        f"failure_threshold={config.failure_threshold}, reset_timeout={config.reset_timeout:g},"
        f" half_open_max_calls={config.half_open_max_calls}"
    )


def _skip_at_instant(entry: JobEntry, planned: datetime, now: datetime) -> SkipReason | None:
    """Why a fire claimed ahead of its time (`engine.ahead`) does not run when its time has
    come, or None: its job was removed or paused in between (`removed` is reported as
    `paused`: either way nothing runs), or the machine slept through the instant and the
    job's misfire policy skips late fires."""
    if entry.removed or entry.paused:
        return SkipReason.paused
    misfire = entry.job.misfire
    if misfire.policy == "skip" and (now - planned).total_seconds() > misfire.grace_s:
        return SkipReason.misfire
    return None


#: Python 3.12+ can start a task eagerly: its first step runs inside its creation.
_EAGER_START: dict[str, Any] = {"eager_start": True} if sys.version_info >= (3, 12) else {}


def _task_maker(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]:
    """What makes the task of each run the tick starts.

    `loop.create_task` when the loop has a task factory (the application's choice rules).
    Otherwise `asyncio.Task` itself, which is all `create_task` would call (one Python frame
    less per fire), started eagerly on Python 3.12+: the handler's first step runs at once,
    and a handler that ends without waiting for anything never goes through the event
    loop's queue at all (15 % less CPU per fire on 3.12, `bench.engine_cpu`). The tick is
    written for that: it keeps a run's task only if the task has not finished.

    The class itself when there is nothing to bind (Python 3.11): a task made in the loop
    that runs it takes that loop, and a `partial` with a keyword costs 0.7 % of a fire."""
    if loop.get_task_factory() is not None:
        return loop.create_task
    if not _EAGER_START:
        return asyncio.Task
    return partial(asyncio.Task, loop=loop, **_EAGER_START)


class _Ahead:
    """The type of `AHEAD`."""

    __slots__ = ()


#: In `Claimed.admitted`: a fire claimed ahead of its instant that starts at once when the
#: instant comes (its job counts it in `starting` until then).
AHEAD = _Ahead()


class Claimed:
    """A tick's fires between their claim and their launch (`Firing._claim_fires`), in
    parallel lists: per fire, its job's entry, scheduled and planned times, what was
    admitted at once (a tracked run, a skip, `AHEAD`, or None: decide at launch), whether
    its claim was won, and the record written with it: for a fire admitted `AHEAD`, only
    that record's run id (the record is made again at launch, from the same fields).

    Lists, not a tuple per fire, and run ids, not records, for the fires claimed ahead:
    those live until their instant comes, and each object that survives that long costs
    the garbage collector's older generations (`engine.ahead`). A list of strings costs
    one object; a `RunRecord` per fire held 150 ms was promoted to the oldest generation
    10,000 times a second at 10,000 jobs and forced a full collection every 2-3 s (10 % of
    the engine's CPU). A `str` or a `datetime` is never tracked by the collector. For the
    same reason a `Claimed` is used again: emptied once launched, it waits in
    `Firing._claimed_spare` for the next claims (a new one and its six lists, made for
    every 32 fires, were promoted as well)."""

    __slots__ = ("admitted", "entries", "fires", "planned", "ahead", "runs", "won")

    def __init__(self) -> None:
        self.entries: list[JobEntry] = []
        self.fires: list[datetime] = []
        self.planned: list[datetime] = []
        self.admitted: list[ActiveRun | SkipReason | _Ahead | None] = []
        self.runs: list[RunRecord | str | None] = []
        self.won: list[bool] = []
        #: The instant the fires were claimed ahead of (`Scheduler._start_ahead`), or None:
        #: claimed at their time. Their `running` records were written as started then.
        self.ahead: datetime | None = None

    def clear(self) -> None:
        """Empty the lists, ready to be used again (`Firing._claimed_spare`)."""
        self.entries.clear()
        self.fires.clear()
        self.planned.clear()
        self.admitted.clear()
        self.runs.clear()
        self.won.clear()
        self.ahead = None


class HeldSuccesses:
    """The runs that succeeded while a crowded instant's fires were being launched
    (`Scheduler._start_ahead`), recorded once the last of them is launched
    (`Firing._record_held`).

    Writing a turn's successes between the instant's launches was about a sixth of the work
    done per fire before the last handler starts, and so of the instant's p99 lateness. Each
    run is held as a plain tuple of the fields of its final record that vary
    (`runner.record_from_held`), and its `ActiveRun` is let go at once: a tuple of strings,
    datetimes, ints and None is untracked by the collector at its first collection, while a
    `RunRecord` (its status an enum member) or an `ActiveRun` held that long is promoted to
    the oldest generation. Held `RunRecord`s and `ActiveRun`s made a full collection every
    second at 10,000 jobs.

    Invariant: a held run's job stays busy (counted in `JobEntry.starting`) until its record
    is written, as it would in `JobEntry.active`: the overlap policies, the queued fires
    (`_drain`) and `stop()` see it as not yet ended."""

    __slots__ = ("entries", "runs")

    def __init__(self) -> None:
        self.entries: list[JobEntry] = []
        #: Per run, its final record's fields but the constant ones (`record_from_held`).
        self.runs: list[tuple[Any, ...]] = []


#: Records built and written at a time from `HeldSuccesses` (`Firing._record_held`): all of
#: an instant's at once lived through enough collections to be promoted.
_HELD_WRITE = 256


class _SkipBatch:
    """The skip records of one turn of the event loop, and the future of their write."""

    __slots__ = ("records", "written")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.records: list[RunRecord] = []
        self.written: asyncio.Future[None] = loop.create_future()


class Firing(StoreSync):
    """Fires, runs, circuits and leases (see the module docstring)."""

    events: EventBus
    node_id: str
    lease_s: float
    rng: random.Random
    dispatch: Dispatch | None
    _circuits: dict[str, Circuit]
    #: The event loop the scheduler runs on, and its thread (`_progress_from`).
    _event_loop: asyncio.AbstractEventLoop | None
    _loop_thread: int
    #: (breaker name, job id) pairs already warned about (`_circuit_for`).
    _circuit_mismatches: set[tuple[str, str]]
    _runner: Runner
    concurrency_limits: dict[str, int]
    _group_active: collections.Counter[str]
    #: The store's `data_losses` when this scheduler last wrote its data back.
    _losses_seen: int
    #: Admitted runs that succeeded in this turn of the loop, to be recorded together.
    _succeeded: list[tuple[JobEntry, ActiveRun]]
    #: The tasks recording them, also in `_tasks` (`stop()` waits for these instead of
    #: cancelling them).
    _recording: set[asyncio.Task[None]]
    #: `Claimed` objects launched, emptied, for the next claims to fill. Those claimed
    #: ahead live until their instant (`engine.ahead`): new ones (seven objects each, one
    #: per 32 fires) were all promoted to the collector's oldest generation, which forced a
    #: full collection of the whole heap every few seconds at 10,000 jobs.
    _claimed_spare: list[Claimed]
    #: Skip records waiting for the write that takes this turn's skips (`_write_skip`).
    _skips: _SkipBatch | None
    #: From the moment a crowded instant has come until its last fire is launched: the runs
    #: that succeed in between, recorded after (`HeldSuccesses`); None otherwise.
    _held: HeldSuccesses | None
    #: The tasks of abandoned runs (`_abandon`), kept here until their handlers return.
    _abandoned: set[asyncio.Task[Any]]
    #: `stop()` has begun: no new fire starts.
    _stopping: bool

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fire task failed", exc_info=task.exception())

    def _begin_catch_up(self, entry: JobEntry, fires: list[datetime]) -> None:
        """`run_all`: each missed fire in order, one after another, as one chain.

        The job counts as busy (`starting`) from now until the chain's last run begins,
        between its runs too: a fire that comes meanwhile meets the job's overlap policy
        (skipped, queued after the chain, ...). Without that, a fire coming while the next
        missed one was being claimed found the job idle and started, and the missed one
        then met it busy (skipped for overlap), or ran after it."""
        entry.starting += 1
        self._spawn(self._catch_up(entry, fires))

    async def _catch_up(self, entry: JobEntry, fires: list[datetime]) -> None:
        """The chain of `_begin_catch_up`. Each claim writes the fire it claims as the job's
        last fire (`last_fire` moved to the newest missed one when the misfire was found),
        unless an on-time fire of the job was claimed since: a stop or a crash in the
        middle leaves the fires not yet begun to be found missed again at the restart,
        instead of lost. A stop ends the chain (the runner absorbs the cancellation of the
        run it cancels, so the chain would go on to the next fire)."""
        held = True  # the `starting` count `_begin_catch_up` took
        newest = fires[-1]
        try:
            for fire in fires:
                if entry.removed or entry.paused or self._stopping:
                    return
                if entry.unsaved:
                    await self._saved(entry)
                last = entry.last_fire
                progress = fire if last is None or last <= newest else last
                if not await self._claim_one(entry, fire, self.clock.now(), last_fire=progress):
                    continue
                entry.starting -= 1  # its own run is admitted as the job's only one
                held = False
                await self._admit(entry, fire, fire)
                entry.starting += 1
                held = True
        finally:
            if held:
                entry.starting -= 1
            if entry.pending:
                self._drain(entry)

    async def _fire(
        self,
        entry: JobEntry,
        fire: datetime,
        planned: datetime,
        *,
        manual: bool = False,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Claim, record state, then decide (module docstring). `now`: the tick's time."""
        job = entry.job
        if entry.unsaved:
            await self._saved(entry)
            now = None
        if now is None:
            now = self.clock.now()
        if manual:  # a manual run leaves the schedule's state alone, but for `max_runs`
            claimed = await self._claim_manual(job.id, fire, now)
            if claimed is None:
                return None
            fire = claimed
            self._count_manual_run(entry)
        elif not await self._claim_one(entry, fire, now):
            return None
        return await self._admit(entry, fire, planned, manual=manual)

    def _schedule_next(self, entry: JobEntry, fire: datetime | None, now: datetime) -> None:
        raise NotImplementedError  # (`Scheduler`)

    def _count_manual_run(self, entry: JobEntry) -> None:
        """A `run_now` run counts toward `max_runs` as every recorded run does after a
        restart (`count_runs`); the one that reaches it cancels the next scheduled fire."""
        entry.fires += 1
        max_runs = entry.job.max_runs
        if max_runs is not None and entry.fires >= max_runs and entry.next_fire is not None:
            self._schedule_next(entry, None, self.clock.now())

    async def _claim_manual(self, job_id: str, fire: datetime, now: datetime) -> datetime | None:
        """Claim the instant of a manual run, or the first free one of the next
        `_MANUAL_TRIES` microseconds: two `run_now` within one tick of a coarse clock
        (15.6 ms on Windows) are two runs, not a skip of the second. None: all taken."""
        for _ in range(_MANUAL_TRIES):
            if await self.store.claim_fire(job_id, fire, self.node_id, now=now):
                return fire
            fire += _ONE_US
        return None

    async def _claim_one(
        self, entry: JobEntry, fire: datetime, now: datetime, *, last_fire: datetime | None = None
    ) -> bool:
        """Claim one scheduled fire and write its job's state, as a tick's batch does
        (`last_fire`: the last fire to write, when not the job's own)."""
        stored_last = entry.last_fire if last_fire is None else last_fire
        start = FireStart(entry.job.id, fire, entry.next_fire, stored_last)
        [won] = await self.store.start_fires([start], self.node_id, now=now)
        return won

    async def _start_fires(self, due: list[DueFire], now: datetime) -> None:
        """The on-time fires of one tick: claim them all and write their jobs' state in one
        store call (one transaction), then run each fire won in its own task."""
        claimed = await self._claim_fires(due, now)
        if claimed is not None:
            self._launch_fires(claimed)

    async def _claim_fires(
        self, due: list[DueFire], now: datetime, *, ahead: bool = False
    ) -> Claimed | None:
        """Claim a tick's fires and write their jobs' state in one store call (one
        transaction); None when none is left to launch here.

        A fire that will start at once (its job idle, with no decision to wait for: see the
        loop) is admitted here: its run is tracked as active from now, so overlap sees it
        while the claim is written, and its `running` record goes into the same
        transaction as its claim. The rest go through `_admit` (pause, overlap, circuit,
        group) when launched.

        `ahead`: `now` is an instant still to come (`engine.ahead`). A fire admitted then
        counts in its job's `starting` until launched, and its `ActiveRun` is made at launch:
        objects that live until the instant cost the garbage collector's older generations,
        so a claimed fire keeps only its record. Nothing is skipped ahead: a fire of a busy
        job is decided at launch, by its overlap policy and the job as they are then (a run
        may end in between).

        Fires of jobs added while running wait here until the store has their jobs (runs
        reference them), then are claimed together like the rest (and not launched before
        an instant claimed ahead): a burst of jobs added at once must not turn into one
        store call per fire (they are set aside in the loop below)."""
        runner = self._runner
        spare = self._claimed_spare
        claimed = spare.pop() if spare else Claimed()
        if ahead:
            claimed.ahead = now
        entries, fires, planneds = claimed.entries, claimed.fires, claimed.planned
        admitted, runs = claimed.admitted, claimed.runs
        starts: list[FireStart] = []
        no_dispatch = self.dispatch is None
        unsaved: list[DueFire] = []
        # An id for each fire, made together (most fires start at once and need one).
        for (entry, fire, planned), run_id in zip(due, new_run_ids(len(due)), strict=True):
            if entry.unsaved:  # claimed once the store has the job (see above)
                unsaved.append((entry, fire, planned))
                continue
            run = None
            kept: RunRecord | str | None = None
            active: ActiveRun | SkipReason | _Ahead | None = None
            job = entry.job
            options = job._options  # (slots, not the option properties: once per fire)
            # Starts at once: the job is idle and not paused (every overlap policy runs it),
            # has no circuit or concurrency group, and is not handed to a queue.
            if (
                not entry.paused
                and not entry.active
                and not entry.starting
                and options.circuit is None
                and options.concurrency_group is None
                and (no_dispatch or options.queue is None)
            ):
                run = runner.running_record(job, run_id, fire, now)
                if ahead:
                    active = AHEAD
                    entry.starting += 1
                    kept = run_id  # see `Claimed`
                else:
                    active = ActiveRun(run_id, fire, run, False)
                    entry.track(active)
                    kept = run
            elif not ahead and (skip := self._skips_at_once(entry)) is not None:
                active = skip
                kept = run = self._skip_record(entry, fire, skip, now)
            entries.append(entry)
            fires.append(fire)
            planneds.append(planned)
            admitted.append(active)
            starts.append(
                _new_start(FireStart, (job.id, fire, entry.next_fire, entry.last_fire, run))
            )
            runs.append(kept)
        if unsaved:
            self._spawn(self._start_when_saved(unsaved, now if ahead else None))
            if not starts:
                return None
        try:
            # Into the list the `Claimed` already holds (see `_claimed_spare`).
            claimed.won.extend(await self.store.start_fires(starts, self.node_id, now=now))
        except Exception:
            # Nothing was claimed (one transaction) and the jobs' stored `last_fire` did not
            # move: another node may run these fires; here they are missed, and a restart
            # hands them to each job's misfire policy. The next tick is unaffected.
            log.exception("could not claim the %d fire(s) due at %s", len(starts), now.isoformat())
            claimed.won[:] = [False] * len(starts)
        except BaseException:  # cancelled: nothing launches them, so their jobs are not busy
            claimed.won[:] = [False] * len(starts)
            self._launch_fires(claimed)
            raise
        return claimed

    def _launch_fires(self, claimed: Claimed, *, cancel_reason: str | None = None) -> None:
        """Start the claimed fires won: each admitted run in its own task, the rest through
        `_admit`; publish the skips written with the claims.

        For fires claimed ahead of their instant, now that it has come: `cancel_reason`
        says the scheduler is stopping instead, and each such fire records `cancelled`
        (with it) without running; a fire whose job was paused or removed in between, or
        that its job's misfire policy skips (`_skip_at_instant`), does not run; the others
        run (`AHEAD`: its job was idle at the claim) or are decided now (`_admit`).

        `claimed` is emptied at the end and kept for the next claims (`_claimed_spare`):
        nothing may read it after this call."""
        runner = self._runner
        new_task = _task_maker(asyncio.get_running_loop())
        publishing = self.events.subscriber_count > 0  # read once per batch, not per fire
        claimed_at = claimed.ahead
        now = None if claimed_at is None else self.clock.now()
        # Fires claimed ahead can only be late if the loop woke after their instant.
        late = now is not None and now > min(claimed.planned)
        for entry, fire, planned, active, ok, kept in zip(
            claimed.entries,
            claimed.fires,
            claimed.planned,
            claimed.admitted,
            claimed.won,
            claimed.runs,
            strict=True,
        ):
            if active is AHEAD:
                entry.starting -= 1
                if not ok:
                    continue
                assert isinstance(kept, str) and claimed_at is not None
                if cancel_reason is None and (
                    entry.removed or entry.paused or (late and entry.job.misfire.policy == "skip")
                ):
                    assert now is not None
                    if self._skipped_at_instant(entry, fire, kept, planned, now):
                        continue
                # The record written with the claim, made again (see `Claimed`).
                run = runner.running_record(entry.job, kept, fire, claimed_at)
                active = ActiveRun(kept, fire, run, False)
                if cancel_reason is not None:
                    active.cancel_reason = cancel_reason
                # `entry.track(active)`, inline (once per fire; see `JobEntry.untrack`).
                tracked = entry.active
                if tracked is NO_RUNS:
                    entry.active = {kept: active}
                else:
                    tracked[kept] = active
            elif isinstance(active, ActiveRun):
                if not ok:
                    entry.untrack(active.run_id)
                    continue
            else:
                if ok and not (
                    # Undecided when claimed ahead: the instant's checks first, as above.
                    now is not None
                    and cancel_reason is None
                    and self._skipped_at_instant(entry, fire, None, planned, now)
                ):
                    assert not isinstance(kept, str)  # a skip's record, or None
                    self._launch_undecided(entry, fire, planned, active, kept, cancel_reason)
                continue
            if publishing:
                assert active.record is not None
                runner.publish_started(active.record)
            # No done callback (the hot path): the task removes itself from `_tasks`,
            # unless an eager task factory (Python 3.12+) ran it to its end already.
            active.task = task = new_task(self._run_admitted(entry, active, planned))
            if not task.done():
                self._tasks.add(task)
        if len(self._claimed_spare) < _SPARE_CLAIMED:
            claimed.clear()
            self._claimed_spare.append(claimed)

    def _launch_undecided(
        self,
        entry: JobEntry,
        fire: datetime,
        planned: datetime,
        skip: SkipReason | None,
        run: RunRecord | None,
        cancel_reason: str | None,
    ) -> None:
        """A claimed fire won that was not admitted at once: publish the skip written with
        its claim, or decide it now (`_admit`), or end it `cancelled` if stopping."""
        if skip is not None:
            assert run is not None
            if skip is _OVERLAP:
                entry.consecutive_skips += 1
            self._publish_skipped(run)
        elif cancel_reason is None:
            self._spawn(self._admit(entry, fire, planned))
        else:  # claimed, so no other node runs it: it ends here, on the record
            self._spawn(self._cancel_unstarted(entry, fire, cancel_reason))

    def _skipped_at_instant(
        self, entry: JobEntry, fire: datetime, run_id: str | None, planned: datetime, now: datetime
    ) -> bool:
        """Record a fire claimed ahead skipped if it does not run (`_skip_at_instant`);
        `run_id`: that of the `running` record written with its claim, if any."""
        skip = _skip_at_instant(entry, planned, now)
        if skip is None:
            return False
        if not entry.removed:  # a removed job's runs went with it
            self._spawn(self._record_skip(entry, fire, skip, run_id=run_id))
        if entry.pending:
            self._drain(entry)
        return True

    async def _start_when_saved(self, due: list[DueFire], not_before: datetime | None) -> None:
        """`_start_fires` for fires of jobs the store does not have yet, once it has them
        (not holding up the tick's other fires, nor the next tick)."""
        for entry, _, _ in due:
            if entry.unsaved:
                await self._saved(entry)
        if not_before is not None:
            await self.clock.sleep_until(not_before)
        await self._start_fires(due, self.clock.now())

    def _skips_at_once(self, entry: JobEntry) -> SkipReason | None:
        """Why a due fire of `entry` is skipped without a decision to wait for, or None: the
        job is paused, or it is busy and its overlap policy skips the fire.

        Deciding these in the tick (their skip records written with their claims) matters
        most under overload: when the store falls behind, runs that ended stay active until
        their results are written, and the next tick skips their fires; skipping must then
        cost less than running, or the engine falls further behind every tick."""
        if entry.paused:
            return _PAUSED
        return _OVERLAP if _overlap_action(entry) == _SKIP else None

    async def _run_admitted(self, entry: JobEntry, active: ActiveRun, planned: datetime) -> None:
        """Run a fire admitted (and recorded running) by its tick's `_start_fires`.

        A run that succeeds is recorded with the others that succeed in the same turn of
        the event loop (`_record_succeeded`), and stays active until then."""
        active.started = True
        # (A read is cheaper than a write of the shared default; slots, not the property.)
        if entry._rare.consecutive_skips:
            entry.consecutive_skips = 0
        unrecorded = False
        try:
            final = await self._runner.run(entry.job, active, planned, defer_success=True)
            unrecorded = final.status == _SUCCEEDED
        except Exception:
            log.exception("fire task failed")
        finally:
            self._tasks.discard(active.task)
            if not unrecorded:
                self._end_run(entry, active)
        if unrecorded:  # recorded with the turn's others (inline: once per fire)
            held = self._held
            if held is not None and not active.disowned:  # a crowded instant's launches
                # Busy until recorded (`HeldSuccesses`), and let go of: `entry.untrack`, inline.
                entry.starting += 1
                runs = entry.active
                runs.pop(active.run_id, None)
                if not runs:
                    entry.active = NO_RUNS
                r = active.record
                assert r is not None
                held.entries.append(entry)
                # The fields `record_from_held` takes, in its order (inline: once per fire).
                held.runs.append((r[0], r[1], r[2], r[4], r[5], r[6], r[8], r[12], r[13]))
                return
            batch = self._succeeded
            batch.append((entry, active))
            if len(batch) == 1:  # the first of this turn: record them all in the next one
                self._record_later(batch)

    def _record_later(self, batch: list[tuple[JobEntry, ActiveRun]]) -> None:
        self._start_recording(self._record_succeeded(batch))

    def _start_recording(self, recording: Coroutine[Any, Any, None]) -> None:
        """Write finished runs in a task of their own, which `stop()` waits for instead of
        cancelling it (`_recording`), and so does `drain()` (`_tasks`)."""
        task = asyncio.get_running_loop().create_task(recording)
        self._recording.add(task)
        self._tasks.add(task)
        task.add_done_callback(self._recorded)

    def _release_held(self) -> None:
        """The crowded instant's launches are over: record the runs held since they began
        (`HeldSuccesses`), in a task `stop()` and `drain()` wait for."""
        held, self._held = self._held, None
        if held is not None and held.entries:
            self._start_recording(self._record_held(held))

    async def _record_held(self, held: HeldSuccesses) -> None:
        """Write the held runs' records, `_HELD_WRITE` at a time; then their jobs are idle."""
        node_id = self.node_id
        runs = held.runs
        try:
            for at in range(0, len(runs), _HELD_WRITE):
                await self._runner.record_finished(
                    [record_from_held(run, node_id) for run in runs[at : at + _HELD_WRITE]]
                )
        finally:
            for entry in held.entries:
                entry.starting -= 1
                if entry._rare.pending:  # (`entry.pending`: slots, not the property)
                    self._drain(entry)

    def _recorded(self, task: asyncio.Task[None]) -> None:
        self._recording.discard(task)
        self._task_done(task)

    def _end_run(self, entry: JobEntry, active: ActiveRun) -> None:
        entry.untrack(active.run_id)
        if entry.pending:
            self._drain(entry)

    async def _record_succeeded(self, batch: list[tuple[JobEntry, ActiveRun]]) -> None:
        """Record a turn's succeeded runs in one store call, then end them (never cancelled
        by `stop()`, which waits for it)."""
        await yield_to_creator()  # the turn's other records join this batch
        if self._succeeded is batch:
            self._succeeded = []
        try:
            await self._runner.record_succeeded([active for _, active in batch])
        finally:
            for entry, active in batch:  # `_end_run` and `entry.untrack`, inline (once per fire)
                runs = entry.active
                runs.pop(active.run_id, None)
                if not runs:  # the job's dict lives no longer than its runs (`JobEntry.untrack`)
                    entry.active = NO_RUNS
                if entry._rare.pending:  # (`entry.pending`: slots, not the property)
                    self._drain(entry)

    async def _admit(
        self, entry: JobEntry, fire: datetime, planned: datetime, *, manual: bool = False
    ) -> RunRecord | None:
        """A claimed fire (its state written): pause, overlap, then run."""
        job = entry.job
        if entry.paused and not manual:
            return await self._record_skip(entry, fire, SkipReason.paused)
        action = _overlap_action(entry)
        if action == OverlapAction.run:
            return await self._start_run(entry, fire, planned)
        if action == OverlapAction.skip:
            entry.consecutive_skips += 1
            return await self._record_skip(entry, fire, SkipReason.overlap)
        if action == OverlapAction.replace_active:
            await self._cancel_active(entry, "replaced by a newer fire")
            return await self._start_run(entry, fire, planned)
        if action == OverlapAction.delay:
            await self.clock.sleep(job.overlap.delay_s)
            if entry.removed:
                return None
            if entry.paused:
                return await self._record_skip(entry, fire, SkipReason.paused)
            if job.overlap.after_delay(active=entry.busy) == OverlapAction.run:
                return await self._start_run(entry, fire, planned)
            entry.consecutive_skips += 1
            return await self._record_skip(entry, fire, SkipReason.overlap)
        if action == OverlapAction.buffer:
            while entry.pending:
                older = entry.waiting().popleft()
                if not older.future.done():
                    await self._resolve_pending(entry, older, SkipReason.overlap, "", True)
        pending = PendingFire(fire, planned, asyncio.get_running_loop().create_future())
        entry.waiting().append(pending)
        result = await pending.future
        if result is not None:
            return result
        entry.starting -= 1
        return await self._start_run(entry, fire, planned)

    async def _start_run(
        self,
        entry: JobEntry,
        fire: datetime,
        planned: datetime,
        *,
        first_attempt: int = 1,
        active: ActiveRun | None = None,
    ) -> RunRecord:
        """Run the fire now (circuit permitting). `active` continues a run already recorded
        (the retry of an interrupted run)."""
        job = entry.job
        circuit = self._circuit_for(job) if job.circuit is not None else None
        if circuit is not None:
            allowed, moved = circuit.allows(self.clock.now())
            if moved:
                self._publish_circuit(circuit, moved, job.id)
            if not allowed:
                if active is not None:  # a pre-recorded retry: it ends here
                    entry.untrack(active.run_id)
                record = await self._record_skip(
                    entry, fire, SkipReason.circuit_open, run_id=active.run_id if active else None
                )
                self._drain(entry)
                return record
        group = job.concurrency_group
        if group is not None and active is None and self._group_full(group):
            record = await self._record_skip(entry, fire, SkipReason.concurrency)
            self._drain(entry)
            return record
        entry.consecutive_skips = 0
        if active is None:
            active = ActiveRun(run_id=new_run_id(), scheduled_for=fire)
        active.task = asyncio.current_task()
        entry.track(active)
        if group is not None:
            self._group_active[group] += 1
        ended: RunRecord | None = None
        try:
            if job.queue is not None and self.dispatch is not None:
                ended = await self._dispatch(job, fire, active)
            else:
                ended = await self._runner.execute(
                    job, active, planned=planned, first_attempt=first_attempt
                )
        finally:
            entry.untrack(active.run_id)
            if group is not None:
                self._group_active[group] -= 1
            if circuit is not None and (ended is None or ended.status == RunStatus.cancelled):
                circuit.release()  # no verdict: a half-open probe's slot is free again
        if circuit is not None and ended.status != RunStatus.cancelled:
            moved = circuit.record(ended.status == RunStatus.succeeded, self.clock.now())
            if moved:
                self._publish_circuit(circuit, moved, job.id)
        if entry.pending:
            self._drain(entry)
        return ended

    def _group_full(self, group: str) -> bool:
        """True when the concurrency group already runs its limit (no limit: never)."""
        limit = self.concurrency_limits.get(group)
        return limit is not None and self._group_active[group] >= limit

    async def _dispatch(self, job: Job, fire: datetime, active: ActiveRun) -> RunRecord:
        assert self.dispatch is not None
        record = RunRecord(
            run_id=active.run_id,
            job_id=job.id,
            scheduled_for=fire,
            status=RunStatus.scheduled,
            node_id=self.node_id,
        )
        try:
            queue_job_id = await self.dispatch(job, fire, record)
        except Exception as exc:
            record = record.evolve(
                status=RunStatus.failed, error=describe_error(exc), finished_at=self.clock.now()
            )
        else:
            record = record.evolve(queue_job_id=queue_job_id)
        await self.store.record_run(record)
        return record

    def _drain(self, entry: JobEntry) -> None:
        """A run ended: start the oldest pending fire if the job is free."""
        if entry.busy == 0 and entry.pending:
            pending = entry.waiting().popleft()
            if not pending.future.done():
                entry.starting += 1
                pending.future.set_result(None)

    def _release_pending(
        self, entry: JobEntry, skip: SkipReason | None, why: str, *, record: bool = True
    ) -> None:
        """Resolve every pending fire: skipped(`skip`), or cancelled when `skip` is None."""
        while entry.pending:
            pending = entry.waiting().popleft()
            if not pending.future.done():
                self._spawn(self._resolve_pending(entry, pending, skip, why, record))

    async def _resolve_pending(
        self, entry: JobEntry, pending: PendingFire, skip: SkipReason | None, why: str, record: bool
    ) -> None:
        """End a pending fire: skipped(`skip`) or cancelled, recorded if `record`. Its
        waiting task gets the record, or what the store raised (and logs it): a failed write
        must not leave it waiting forever, which would hold `drain()` and `stop()`."""
        try:
            result = await self._pending_result(entry, pending, skip, why, record)
        except Exception as exc:
            if not pending.future.done():
                pending.future.set_exception(exc)
            return
        if not pending.future.done():
            pending.future.set_result(result)

    async def _pending_result(
        self, entry: JobEntry, pending: PendingFire, skip: SkipReason | None, why: str, record: bool
    ) -> RunRecord:
        if skip is not None and record:
            return await self._record_skip(entry, pending.scheduled_for, skip)
        return await self._cancel_unstarted(entry, pending.scheduled_for, why, record=record)

    async def _cancel_unstarted(
        self, entry: JobEntry, scheduled_for: datetime, why: str, *, record: bool = True
    ) -> RunRecord:
        """The `cancelled` record of a fire that never started (written if `record`)."""
        now = self.clock.now()
        result = RunRecord(
            run_id=new_run_id(),
            job_id=entry.job.id,
            scheduled_for=scheduled_for,
            status=RunStatus.cancelled,
            error=f"cancelled before it started: {why}",
            finished_at=now,
            node_id=self.node_id,
        )
        if record:
            await self.store.record_run(result)
            self.events.publish(
                RunCancelled(
                    at=now,
                    job_id=entry.job.id,
                    run_id=result.run_id,
                    scheduled_for=scheduled_for,
                    node_id=self.node_id,
                    reason=why,
                )
            )
        return result

    async def _cancel_active(self, entry: JobEntry, reason: str) -> None:
        """Cancel `entry`'s active runs and wait until they have ended.

        A handler that ignores cancellation would make that wait, and so the job and every
        later fire of it, last for good. A job with a timeout cannot have one (its runner
        gives up on the handler after `stop_grace_s`); for the others the wait lasts at most
        `stop_grace_s` too, then the runs still going are abandoned (`_abandon`)."""
        waiting: dict[asyncio.Task[Any], ActiveRun] = {}
        for active in list(entry.active.values()):
            active.cancel(reason)
            if active.task is not None and active.task is not asyncio.current_task():
                waiting[active.task] = active
        if not waiting:
            return
        if entry.job.timeout_s is not None:
            await asyncio.wait(set(waiting))
            return
        grace_s = self._runner.stop_grace_s
        grace = asyncio.ensure_future(self.clock.sleep(grace_s))
        going = set(waiting)
        try:
            while going and not grace.done():
                await asyncio.wait({*going, grace}, return_when=asyncio.FIRST_COMPLETED)
                going = {task for task in going if not task.done()}
        finally:
            grace.cancel()
        for task in going:
            await self._abandon(entry, waiting[task], grace_s)

    async def _abandon(self, entry: JobEntry, active: ActiveRun, grace_s: float) -> None:
        """Give up on a run whose handler ignored cancellation for `grace_s`: record it
        `cancelled` and free its job. Its task goes on until the handler returns (a
        coroutine cannot be stopped from outside), but records nothing more."""
        log.error(
            "the handler of job %s ignored cancellation for %g s; abandoning run %s",
            entry.job.id,
            grace_s,
            active.run_id,
        )
        entry.untrack(active.run_id)
        task = active.task
        if task is not None and task in self._tasks:  # `drain()` does not wait for it
            self._tasks.discard(task)
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
        await self._runner.abandon(active, grace_s)

    async def _record_skip(
        self, entry: JobEntry, fire: datetime, reason: SkipReason, *, run_id: str | None = None
    ) -> RunRecord:
        record = self._skip_record(entry, fire, reason, self.clock.now(), run_id=run_id)
        await self._write_skip(record)
        self._publish_skipped(record)
        return record

    def _skip_record(
        self,
        entry: JobEntry,
        fire: datetime,
        reason: SkipReason,
        now: datetime,
        *,
        run_id: str | None = None,
    ) -> RunRecord:
        return RunRecord(
            run_id=run_id or new_run_id(),
            job_id=entry.job.id,
            scheduled_for=fire,
            status=RunStatus.skipped,
            skip_reason=str(reason),
            started_at=now,
            finished_at=now,
            node_id=self.node_id,
        )

    def _publish_skipped(self, record: RunRecord) -> None:
        assert record.finished_at is not None and record.skip_reason is not None
        self.events.publish(
            RunSkipped(
                at=record.finished_at,
                job_id=record.job_id,
                run_id=record.run_id,
                scheduled_for=record.scheduled_for,
                node_id=self.node_id,
                reason=record.skip_reason,
            )
        )

    async def _write_skip(self, record: RunRecord) -> None:
        """Write a skip record together with the others of this turn of the event loop, and
        return once it is durable (or raise what the write raised).

        Why together: when the store falls behind (a slow disk under SQLite), runs that
        ended stay active until their results are written, so the next tick skips their
        fires. One write per skip would put thousands of writes before the writer each
        tick, and it would fall further behind every tick; one write per turn keeps the
        writes per tick constant, however many fires are skipped."""
        batch = self._skips
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self._skips = _SkipBatch(loop)
            # In the batch before its task exists: an eager task factory runs the write at
            # once, and a record appended after it would never be written.
            batch.records.append(record)
            task = loop.create_task(self._write_skips(batch))
            self._recording.add(task)  # `stop()` waits for it instead of cancelling it
            self._tasks.add(task)  # so that `drain()` waits for it
            task.add_done_callback(self._recorded)
        else:
            batch.records.append(record)
        # Shielded: a cancelled waiter must not cancel the write the others wait for.
        await asyncio.shield(batch.written)

    async def _write_skips(self, batch: _SkipBatch) -> None:
        await yield_to_creator()  # the turn's other records join this batch
        if self._skips is batch:  # records from here on go into the next batch
            self._skips = None
        try:
            await self.store.record_runs(batch.records)
        except asyncio.CancelledError:
            batch.written.cancel()
            raise
        except Exception as exc:  # each waiter raises it (and its task logs it)
            batch.written.set_exception(exc)
        else:
            batch.written.set_result(None)

    async def _record_skip_claimed(
        self, entry: JobEntry, fire: datetime, reason: SkipReason
    ) -> None:
        if entry.unsaved:
            await self._saved(entry)
        if await self._claim_one(entry, fire, self.clock.now()):
            await self._record_skip(entry, fire, reason)

    # == progress =======================================================================
    def _progress_from(self, ctx: RunContext, pct: float) -> None:
        """Where `ctx.progress(pct)` of a run this engine started goes, from the event loop
        or from a sync handler's thread (then handed to the loop)."""
        loop = self._event_loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._note_progress(ctx.job_id, ctx.run_id, pct)
            return
        # From a thread: the loop is handed the latest value, once per turn it takes to
        # read it (a handler reporting each of a million items would otherwise queue a
        # million callbacks). Value first, then the flag; the loop clears the flag first,
        # then reads the value: a report is never left unread (`_progress_handed`).
        kept = ctx.__dict__
        kept["_progress_queued"] = pct
        mine = object()
        if kept.setdefault("_progress_handing", mine) is mine:  # atomic: one hand-over
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(self._progress_handed, ctx)

    def _progress_handed(self, ctx: RunContext) -> None:
        kept = ctx.__dict__
        del kept["_progress_handing"]
        self._note_progress(ctx.job_id, ctx.run_id, kept["_progress_queued"])

    def _note_progress(self, job_id: str, run_id: str, pct: float) -> None:
        entry = self._entries.get(job_id)
        active = entry.active.get(run_id) if entry is not None else None
        if active is None or active.ctx is None:
            return  # ended meanwhile
        kept = active.ctx.__dict__
        kept["_progress"] = pct
        # Measured from the last value published, not the last reported: reports a fraction
        # of a percent apart each would otherwise never be published.
        before = kept.get("_progress_sent")
        moved = before is None or abs(pct - before) >= 1.0 or (pct == 100.0 != before)
        if moved and self.events.subscriber_count and active.record is not None:
            kept["_progress_sent"] = pct
            record = active.record
            self.events.publish(
                RunProgress(
                    at=self.clock.now(),
                    job_id=job_id,
                    run_id=run_id,
                    scheduled_for=record.scheduled_for,
                    attempt=record.attempt,
                    node_id=record.node_id,
                    progress=pct,
                )
            )

    # == circuits =======================================================================
    def _circuit_for(self, job: Job) -> Circuit | None:
        name = job.circuit_name
        if name is None or job.circuit is None:
            return None
        circuit = self._circuits.get(name)
        if circuit is None or circuit.config != job.circuit:
            if circuit is None or job.circuit.name is None:
                circuit = Circuit(name, job.circuit)
                self._circuits[name] = circuit
            elif (name, job.id) not in self._circuit_mismatches:
                # A shared breaker has one set of settings: the first job's.
                self._circuit_mismatches.add((name, job.id))
                log.warning(
                    "job %s shares circuit breaker %r but with other settings (%s); the"
                    " breaker keeps those it was made with (%s): give every job sharing a"
                    " breaker the same settings",
                    job.id,
                    name,
                    _breaker_settings(job.circuit),
                    _breaker_settings(circuit.config),
                )
        return circuit

    def _publish_circuit(self, circuit: Circuit, moved: str, job_id: str) -> None:
        cls = {"opened": CircuitOpened, "half_open": CircuitHalfOpen, "closed": CircuitClosed}[
            moved
        ]
        self.events.publish(
            cls(
                at=self.clock.now(),
                circuit=circuit.name,
                job_id=job_id,
                failures=circuit.state.failures,
            )
        )

    # == leases and interrupted runs ====================================================
    async def _maintain(self) -> None:
        interval = self.lease_s / 3
        while True:
            await self.clock.sleep(interval)
            if not store_available(self.store):
                # Renew as soon as the store answers again, before other nodes see expiries.
                await wait_store(self.store)
            try:
                await self._restore_if_data_lost()
            except Exception:  # (the leases are renewed all the same: they matter most)
                log.exception("could not check the store for lost data; again in %.0fs", interval)
            try:
                await self._renew_leases()
                await self._recover_interrupted(self.clock.now())
            except Exception:
                log.exception("lease maintenance failed; retrying in %.0fs", interval)

    async def _restore_if_data_lost(self) -> None:
        """Ask the store whether it lost its data since last asked (`store_data_losses`)
        and, if it did, write this node's jobs and running runs back (`_restore_lost_data`).

        Asked at each lease renewal, and before any reload of the jobs from the store
        (`Scheduler.reload_jobs`): a store that came back empty has no jobs, and a reload
        from it (the job-change token is gone too, so it looks changed) removed every job of
        every node before the next renewal noticed the loss; the write-back then had nothing
        left to write, and the whole cluster stopped firing."""
        losses = await store_data_losses(self.store)
        if losses != self._losses_seen:
            await self._restore_lost_data()
            self._losses_seen = losses

    async def _restore_lost_data(self) -> None:
        """The store lost what it held (`store_data_losses`): write back the jobs and the
        `running` records of this node's runs, which go on (their claims are gone too, so
        another node may run the same occurrence again; the store's log says so)."""
        log.warning("the store lost its data: writing this node's jobs and running runs back")
        await self._restore_jobs()
        until = self.clock.now() + timedelta(seconds=self.lease_s)
        pairs = self._running_records()
        if pairs:
            await self.store.record_runs([r._replace(lease_expires_at=until) for _, r in pairs])
            await self._record_moved_on(pairs)

    async def _record_moved_on(self, written_back: list[tuple[ActiveRun, RunRecord]]) -> None:
        """Record again the newest record of each run that moved on (ended, say) while its
        `running` record was being written back: its own write may have landed first, and
        been undone by the write-back (same fence), leaving it `running` until its lease
        expired and it was taken for interrupted (and retried)."""
        moved = [
            active.record
            for active, sent in written_back
            if active.record is not None and active.record is not sent and not active.disowned
        ]
        if moved:
            await self.store.record_runs(moved)

    def _running_records(self) -> list[tuple[ActiveRun, RunRecord]]:
        """The `running` records of this node's runs that have begun (`ActiveRun.started`).

        A run tracked by its tick is active from before its claim is answered: the claim
        may yet be lost to another node, and then the run has no record. Renewed or written
        back then, its missing record looked lost with the store's data and was written
        back `running`; never renewed again, it expired and was retried beside the winner's
        run. A run that has not begun keeps the lease written with its claim, which lasts
        `lease_s`; the next renewal, `lease_s / 3` later, finds it begun."""
        return [
            (active, active.record)
            for entry in list(self._entries.values())
            for active in list(entry.active.values())
            if active.started
            and active.record is not None
            and active.record.status == RunStatus.running
        ]

    async def _renew_leases(self) -> None:
        until = self.clock.now() + timedelta(seconds=self.lease_s)

        async def renew(item: tuple[ActiveRun, RunRecord]) -> None:
            active, record = item
            ok = await self.store.renew_lease(
                record.run_id, self.node_id, record.fence, until=until
            )
            if ok or active.disowned:
                return
            stored = await self.store.get_run(record.run_id)
            if stored is None:
                # Not taken over: gone, with whatever else the store lost (before its loss
                # was noticed). Written back, the run keeps its lease.
                await self.store.record_run(record._replace(lease_expires_at=until))
                await self._record_moved_on([item])
                return
            if _still_ours(stored, record, self.node_id):
                # Refused before the record was written (a run is active from its claim,
                # and its `running` record lands with the claim's write, maybe after the
                # renewal): not taken over. Its lease runs from its claim, and the next
                # renewal, `lease_s / 3` later, finds it.
                return
            active.disowned = True
            active.cancel("lease lost: another node took this run over")

        running = self._running_records()

        # All at once (in chunks): one by one, a loaded loop could take longer than the lease.
        await map_in_chunks(renew, running)

    async def _recover_interrupted(self, now: datetime) -> None:
        for run in await self.store.interrupt_expired(now):
            self.events.publish(
                RunInterrupted(
                    at=now,
                    job_id=run.job_id,
                    run_id=run.run_id,
                    scheduled_for=run.scheduled_for,
                    attempt=run.attempt,
                    node_id=run.node_id,
                )
            )
            entry = self._entries.get(run.job_id)
            if entry is None or entry.dormant or entry.removed:
                continue
            if run.queue_job_id is not None:
                continue  # a queue's run: its queue retries it (`ScheduledJobRunner`), once
            error = RunInterruptedError(f"run {run.run_id} was interrupted (node {run.node_id})")
            delay = entry.job.retry.next_delay(run.attempt, error, rng=self.rng)
            if delay is None:
                continue
            # The retry is recorded `running` with our lease at once, before its delay: if
            # this process dies too, the lease expires and another node retries it.
            active = ActiveRun(run_id=new_run_id(), scheduled_for=run.scheduled_for)
            active.record = RunRecord(
                run_id=active.run_id,
                job_id=run.job_id,
                scheduled_for=run.scheduled_for,
                status=RunStatus.running,
                attempt=run.attempt + 1,
                started_at=now,
                error=f"retrying after {describe_error(error)}",
                node_id=self.node_id,
                lease_expires_at=now + timedelta(seconds=self.lease_s),
            )
            await self.store.record_run(active.record)
            entry.track(active)
            self._spawn(self._retry_interrupted(entry, active, delay))

    async def _retry_interrupted(self, entry: JobEntry, active: ActiveRun, delay: float) -> None:
        active.task = asyncio.current_task()
        try:
            await self.clock.sleep(delay)
        except asyncio.CancelledError:
            # Recorded `running` with this node's lease: left so, the next node would take
            # it for interrupted by a dead node, and spend another attempt on it.
            try:
                assert active.record is not None
                if active.cancel_reason is None:
                    active.cancel_reason = "scheduler stopped"
                await self._runner.record_cancelled(active, active.record)
            finally:
                entry.untrack(active.run_id)
            return
        record = active.record
        assert record is not None
        others = entry.busy - 1  # (the retry is tracked itself)
        if others and (
            entry.removed
            or entry.job.overlap.decide(active=others, pending=0, consecutive_skips=0)
            != OverlapAction.run
        ):
            # A newer fire of the job runs (on this node: a restart within the dead run's
            # lease fires on time): its overlap policy does not start a second run beside
            # it, so neither does the retry of an older one.
            entry.untrack(active.run_id)
            if not entry.removed:
                now = self.clock.now()
                skipped = record._replace(
                    status=RunStatus.skipped,
                    skip_reason=str(SkipReason.overlap),
                    started_at=now,
                    finished_at=now,
                    error=None,
                    lease_expires_at=None,
                )
                await self._write_skip(skipped)
                self._publish_skipped(skipped)
            if entry.pending:
                self._drain(entry)
            return
        await self._start_run(
            entry,
            active.scheduled_for,
            active.scheduled_for,
            first_attempt=record.attempt,
            active=active,
        )
