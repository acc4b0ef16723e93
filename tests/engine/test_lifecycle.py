"""Pause/resume/remove while running, graceful stop, persistence, interrupted runs,
circuit breakers and scale, through the engine."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest

from agentcron.engine import Scheduler
from agentcron.events import Event
from agentcron.handlers import RunContext
from agentcron.jobs import Job, job_to_definition
from agentcron.models import RunRecord, RunStatus, StoredJob
from agentcron.store.base import JobConflictError
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import Date, Interval

from . import engine_samples
from .conftest import T0, EventLog, Stubborn, all_runs, noop, statuses

RECORD = "engine.engine_samples:record"


def sleeper(clock: VirtualClock, seconds: float) -> Callable[[RunContext], object]:
    async def work(ctx: RunContext) -> None:
        await clock.sleep(seconds)

    return work


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def api_down() -> None:
    raise RuntimeError("api down")


async def test_pausing_while_running_lets_the_run_finish_and_stops_later_fires(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=sleeper(clock, 5))
    async with sched:
        await clock.advance(12)  # the run of 10 is active
        sched.pause("j", note="maintenance")
        assert sched.job("j").paused and sched.job("j").pause_note == "maintenance"
        await clock.advance(40)
        assert statuses(await all_runs(sched, "j")) == ["succeeded"]
        sched.resume("j")
        assert sched.job("j").next_run == T0 + timedelta(seconds=60)
        await clock.advance(14)
        runs = await all_runs(sched, "j")
    assert [(r.scheduled_for - T0).total_seconds() for r in runs] == [10, 60]
    stored = await sched.store.get_job("j")
    assert stored is not None and not stored.paused


async def test_removing_while_running_cancels_the_run_and_deletes_the_job(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=sleeper(clock, 100))
    async with sched:
        await clock.advance(12)
        assert sched.job("j").active_runs == 1
        sched.remove("j")
        await clock.advance(1)
        assert sched.jobs() == []
        assert await sched.store.get_job("j") is None
        assert await sched.runs("j") == []
        await clock.advance(60)
    await sched.events.drain()
    assert "run.cancelled" in event_log.types() and "job.removed" in event_log.types()


async def test_a_paused_job_stays_paused_and_can_still_be_run_by_hand(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=noop)
    sched.pause("j")
    async with sched:
        await clock.advance(30)
        assert await sched.runs("j") == []
        run = await sched.run_now("j")
    assert run.status == RunStatus.succeeded


async def test_graceful_stop_waits_for_runs_within_the_grace_period(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("short", trigger=Date(T0 + timedelta(seconds=1)), handler=sleeper(clock, 5))
    sched.add_job("long", trigger=Date(T0 + timedelta(seconds=1)), handler=sleeper(clock, 500))
    await sched.start()
    await clock.advance(2)
    stopping = asyncio.ensure_future(sched.stop(grace_s=10))
    await clock.advance(11)
    await stopping
    assert statuses(await all_runs(sched, "short")) == ["succeeded"]
    (long_run,) = await all_runs(sched, "long")
    assert long_run.status == RunStatus.cancelled
    assert long_run.error == "cancelled: scheduler stopped"
    assert sched.health()["status"] == "stopped"


async def test_stop_records_a_run_whose_handler_ignores_cancellation_as_cancelled(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # It stayed `running` in the store: on SQLite, `interrupted` a lease later.
    sched = make_scheduler(stop_grace_s=0.1)  # stop() waits at least 1 s of real time
    stubborn = Stubborn()
    sched.add_job("j", trigger=Date(T0 + timedelta(seconds=1)), handler=stubborn)
    try:
        await sched.start()
        await clock.advance(2)
        await sched.stop(grace_s=0)
        (run,) = await all_runs(sched, "j")
        assert run.status == RunStatus.cancelled
        assert run.error is not None and "ignored cancellation" in run.error
    finally:
        stubborn.release()


async def test_stop_takes_no_new_fires(sched: Scheduler, clock: VirtualClock) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=noop)
    await sched.start()
    await clock.advance(10)
    await sched.stop()
    await clock.advance(100)
    assert len(await sched.runs("j")) == 1


async def test_jobs_come_back_from_the_store_after_a_restart_with_their_state(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    engine_samples.CALLS.clear()
    first = make_scheduler()
    first.add_job(
        "persisted",
        trigger="*/10 * * * * *",
        handler=RECORD,
        tags=["x"],
        retry={"max_attempts": 2, "strategy": "fixed", "base_delay": 1, "max_delay": 1},
        overlap={"policy": "queue", "max_queue": 3},
        timezone="Europe/Berlin",
    )
    first.add_job("paused", trigger=Interval(minutes=1), handler=RECORD)
    async with first:
        await clock.advance(15)
        first.pause("paused", note="later")
        await clock.advance(1)
    second = make_scheduler()  # nothing registered in code
    async with second:
        view = second.job("persisted")
        assert view.job.tags == ("x",) and view.job.retry.max_attempts == 2
        assert view.job.overlap.policy == "queue" and view.job.timezone == "Europe/Berlin"
        assert second.job("paused").paused and second.job("paused").pause_note == "later"
        await clock.advance(10)
        runs = await all_runs(second, "persisted")
    assert [(r.scheduled_for - T0).total_seconds() for r in runs] == [10, 20]
    assert [c[0] for c in engine_samples.CALLS] == ["persisted", "persisted"]


async def test_a_job_from_code_updates_the_stored_one_in_place_keeping_history(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    first = make_scheduler()
    first.add_job("j", trigger=Interval(seconds=10), handler=RECORD)
    async with first:
        await clock.advance(10)
    second = make_scheduler()
    second.add_job("j", trigger=Interval(seconds=20), handler=RECORD, name="renamed")
    async with second:
        assert second.job("j").job.name == "renamed"
        await clock.advance(10)
        assert len(await second.runs("j")) == 2
    stored = await store.get_job("j")
    assert stored is not None and stored.version == 2
    assert stored.definition["name"] == "renamed"


async def test_conflict_keep_leaves_the_stored_job_and_error_refuses_to_start(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    first = make_scheduler()
    first.add_job("j", trigger=Interval(seconds=10), handler=RECORD, name="stored")
    async with first:
        pass
    keep = make_scheduler(conflict="keep")
    keep.add_job("j", trigger=Interval(seconds=99), handler=RECORD, name="code")
    async with keep:
        assert keep.job("j").job.name == "stored"
    strict = make_scheduler(conflict="error")
    strict.add_job("j", trigger=Interval(seconds=99), handler=RECORD, name="code")
    with pytest.raises(JobConflictError, match="conflict"):
        await strict.start()


async def test_a_stored_job_whose_handler_cannot_be_rebuilt_is_listed_but_not_scheduled(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    async def closure() -> None:
        return None

    first = make_scheduler()
    first.add_job("closure", trigger=Interval(seconds=10), handler=closure)
    async with first:
        pass
    second = make_scheduler()
    async with second:
        view = second.job("closure")
        assert view.unavailable is not None and view.next_run is None
        await clock.advance(30)
        assert await second.runs("closure") == []
        second.add_job("closure", trigger=Interval(seconds=10), handler=closure)  # code is back
        await clock.advance(10)
        assert len(await second.runs("closure")) == 1


async def test_fires_missed_while_the_scheduler_was_down_go_through_the_misfire_policy(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    engine_samples.CALLS.clear()
    first = make_scheduler()
    first.add_job("j", trigger="0 * * * *", handler=RECORD, misfire="run_all")
    async with first:
        await clock.advance(3600)
    await clock.advance(3 * 3600 + 60)  # down for three hours
    second = make_scheduler()
    async with second:
        await clock.advance(1)
        runs = await all_runs(second, "j")
    assert [(r.scheduled_for - T0) / timedelta(hours=1) for r in runs] == [1, 2, 3, 4]


async def test_an_interrupted_run_is_retried_with_the_same_occurrence_key(
    make_scheduler: Callable[..., Scheduler],
    clock: VirtualClock,
    store: MemoryStore,
) -> None:
    engine_samples.CALLS.clear()
    fire = T0 - timedelta(minutes=10)
    first = make_scheduler()
    first.add_job(
        "j",
        trigger="0 0 1 1 *",
        handler=RECORD,
        retry={"max_attempts": 3, "strategy": "fixed", "base_delay": 2, "max_delay": 2},
    )
    async with first:
        pass
    # a node died while running the fire of `fire`: its lease expired 5 minutes ago
    await store.claim_fire("j", fire, "dead-node", now=fire)
    await store.record_run(
        RunRecord(
            run_id="dead-run",
            job_id="j",
            scheduled_for=fire,
            status=RunStatus.running,
            attempt=1,
            started_at=fire,
            node_id="dead-node",
            lease_expires_at=T0 - timedelta(minutes=5),
        )
    )
    second = make_scheduler()
    log = EventLog()
    second.events.subscribe(log)
    async with second:
        await clock.advance(3)
        runs = await all_runs(second, "j")
    assert [(r.run_id == "dead-run", r.status, r.attempt) for r in runs] in (
        [(True, RunStatus.interrupted, 1), (False, RunStatus.succeeded, 2)],
        [(False, RunStatus.succeeded, 2), (True, RunStatus.interrupted, 1)],
    )
    assert {r.occurrence_key for r in runs} == {f"j@{fire.isoformat()}"}
    assert engine_samples.CALLS == [("j", fire.isoformat(), 2)]
    await second.events.drain()
    assert log.of("run.interrupted")[0].run_id == "dead-run"


async def test_the_retry_of_an_interrupted_run_is_skipped_while_a_newer_fire_runs(
    make_scheduler: Callable[..., Scheduler],
    clock: VirtualClock,
    store: MemoryStore,
) -> None:
    # A restart within a dead run's lease fires the next occurrence on time; when the
    # lease expired, the retry of the dead run started beside it whatever the overlap
    # policy: two runs at once of an `overlap="skip"` job.
    calls: list[tuple[datetime, int]] = []
    release = asyncio.Event()

    async def long(ctx: RunContext) -> None:
        calls.append((ctx.scheduled_for, ctx.attempt))
        await release.wait()

    sched = make_scheduler()
    sched.add_job(
        "j",
        trigger=Date(at(10)),
        handler=long,
        overlap="skip",
        retry={"max_attempts": 3, "strategy": "fixed", "base_delay": 2, "max_delay": 2},
    )
    earlier = T0 - timedelta(minutes=10)
    async with sched:
        try:
            await store.record_run(
                RunRecord(
                    run_id="dead-run",
                    job_id="j",
                    scheduled_for=earlier,
                    status=RunStatus.running,
                    started_at=earlier,
                    node_id="dead-node",
                    lease_expires_at=at(20),
                )
            )
            await clock.advance(400)  # the lease expires and is found; the retry is due
            runs = {r.run_id: r for r in await all_runs(sched, "j")}
            assert calls == [(at(10), 1)]
            [retry] = [r for r in runs.values() if r.scheduled_for == earlier and r.attempt == 2]
            assert (retry.status, retry.skip_reason) == (RunStatus.skipped, "overlap")
            assert runs["dead-run"].status == RunStatus.interrupted
        finally:
            release.set()
        await sched.drain()
    assert calls == [(at(10), 1)]


async def test_two_schedulers_on_one_store_never_both_run_a_fire(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    engine_samples.CALLS.clear()
    a = make_scheduler(node_id="a")
    b = make_scheduler(node_id="b")
    for s in (a, b):
        s.add_job("j", trigger=Interval(seconds=10), handler=RECORD)
    async with a, b:
        await clock.advance(50)
    assert len(engine_samples.CALLS) == 5
    assert len({c[1] for c in engine_samples.CALLS}) == 5


async def test_the_circuit_breaker_opens_half_opens_and_closes_through_the_engine(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    healthy = [False]

    async def flaky() -> None:
        if not healthy[0]:
            raise RuntimeError("down")

    sched.add_job(
        "j",
        trigger=Interval(seconds=10),
        handler=flaky,
        circuit={"failure_threshold": 2, "reset_timeout": 25},
    )
    async with sched:
        await clock.advance(40)  # 10 fail, 20 fail -> open; 30, 40 skipped
        await clock.advance(10)  # 50: half-open probe fails -> open again
        healthy[0] = True
        await clock.advance(30)  # 60, 70 skipped; 80: half-open probe succeeds -> closed
        await clock.advance(10)  # 90 runs normally
        runs = await all_runs(sched, "j")
    assert statuses(runs) == [
        "failed",
        "failed",
        "skipped(circuit_open)",
        "skipped(circuit_open)",
        "failed",
        "skipped(circuit_open)",
        "skipped(circuit_open)",
        "succeeded",
        "succeeded",
    ]
    await sched.events.drain()
    circuit_events = [t for t in event_log.types() if t.startswith("circuit.")]
    assert circuit_events == [
        "circuit.opened",
        "circuit.half_open",
        "circuit.opened",
        "circuit.half_open",
        "circuit.closed",
    ]


async def test_a_circuit_shared_by_name_opens_for_every_job_using_it(
    sched: Scheduler, clock: VirtualClock
) -> None:
    shared = {"failure_threshold": 2, "reset_timeout": 600, "name": "gmail-api"}
    sched.add_job("a", trigger=Interval(seconds=10), handler=api_down, circuit=shared)
    sched.add_job("b", trigger=Interval(seconds=10, start=at(25)), handler=noop, circuit=shared)
    async with sched:
        await clock.advance(36)  # a fails at 10 and 20: open for both
        assert statuses(await all_runs(sched, "b")) == ["skipped(circuit_open)"] * 2
        assert statuses(await all_runs(sched, "a"))[2:] == ["skipped(circuit_open)"]
        assert sched.health()["circuits"] == {"gmail-api": "open"}


async def test_a_job_sharing_a_breaker_with_other_settings_is_named_in_one_warning(
    sched: Scheduler, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sched.add_job("a", trigger=Interval(seconds=10), handler=api_down, circuit={"name": "api"})
    other = {"name": "api", "failure_threshold": 2}
    sched.add_job("b", trigger=Interval(seconds=10), handler=noop, circuit=other)
    async with sched:
        with caplog.at_level(logging.WARNING, logger="agentcron.engine"):
            await clock.advance(31)
    warnings = [r.getMessage() for r in caplog.records if "circuit breaker" in r.getMessage()]
    assert len(warnings) == 1
    assert "job b shares circuit breaker 'api'" in warnings[0]
    assert "failure_threshold=2" in warnings[0] and "failure_threshold=5" in warnings[0]


async def test_a_half_open_probe_replaced_by_a_newer_fire_frees_its_slot_for_that_fire(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # The cancelled probe kept the one half-open slot: every later fire was skipped.
    calls: list[int] = []

    async def fails_then_slow() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("down")
        await clock.sleep(15)

    sched.add_job(
        "j",
        trigger=Interval(seconds=10),
        handler=fails_then_slow,
        overlap="replace",
        circuit={"failure_threshold": 1, "reset_timeout": 15},
    )
    await sched.start()  # (stopped by the fixture, without waiting for the run at 40)
    await clock.advance(46)  # 10 fails; 20 open; 30 probes; 40 replaces the probe
    runs = await all_runs(sched, "j")
    assert statuses(runs) == ["failed", "skipped(circuit_open)", "cancelled", "running"]


async def test_a_shared_circuit_is_not_held_half_open_by_the_probe_of_a_removed_job(
    sched: Scheduler, clock: VirtualClock
) -> None:
    healthy = [False]

    async def api() -> None:
        if not healthy[0]:
            raise RuntimeError("down")

    shared = {"failure_threshold": 1, "reset_timeout": 20, "name": "api"}
    sched.add_job("a", trigger=Interval(seconds=30, start=at(10)), handler=api, circuit=shared)
    sched.add_job("b", trigger=Interval(seconds=10, start=at(15)), handler=sleeper(clock, 100),
                  circuit=shared)  # fmt: skip
    async with sched:
        await clock.advance(41)  # a fails at 10; b probes at 35; a's fire at 40 is skipped
        sched.remove("b")  # its probe ends cancelled, with no verdict on the API
        healthy[0] = True
        await clock.advance(30)  # a probes at 70
        assert statuses(await all_runs(sched, "a")) == [
            "failed", "skipped(circuit_open)", "succeeded"
        ]  # fmt: skip
        assert sched.health()["circuits"] == {"api": "closed"}


async def test_dropping_a_shared_circuit_from_one_job_leaves_it_open_for_the_others(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # `update(circuit=None)` deleted the shared breaker's state: the others ran again.
    shared = {"failure_threshold": 1, "reset_timeout": 3600, "name": "api"}
    sched.add_job("a", trigger=Interval(seconds=10), handler=api_down, circuit=shared)
    sched.add_job("b", trigger=Interval(seconds=10, start=at(15)), handler=noop, circuit=shared)
    async with sched:
        await clock.advance(16)  # a fails at 10: open; b skipped at 15
        sched.update("a", circuit=None)
        await clock.advance(10)
        assert statuses(await all_runs(sched, "b")) == ["skipped(circuit_open)"] * 2


async def test_ten_thousand_jobs_due_in_the_same_second_all_fire_once(
    sched: Scheduler, clock: VirtualClock
) -> None:
    fired: list[str] = []

    async def job(ctx: RunContext) -> None:
        fired.append(ctx.job_id)

    for i in range(10_000):
        sched.add_job(f"job-{i:05d}", trigger="0 * * * *", handler=job)
    async with sched:
        await clock.advance(3600)
        await asyncio.sleep(0)
        for _ in range(50):
            if len(fired) == 10_000:
                break
            await clock.settle()
        assert len(fired) == 10_000
        assert len(set(fired)) == 10_000
        runs = await sched.store.list_runs(
            __import__("agentcron.models").models.RunQuery(limit=20_000)
        )
    assert len(runs) == 10_000
    assert {r.scheduled_for for r in runs} == {T0 + timedelta(hours=1)}
    assert all(r.status == RunStatus.succeeded for r in runs)


async def test_the_queue_seam_dispatches_jobs_with_a_queue_instead_of_running_them(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sent: list[tuple[str, str]] = []

    async def dispatch(job: Job, scheduled_for: object, run: RunRecord) -> str:
        sent.append((job.queue or "", run.occurrence_key))
        return "queue-job-1"

    sched = make_scheduler(dispatch=dispatch)
    sched.add_job("j", trigger=Interval(seconds=10), handler=RECORD, queue="emails")
    async with sched:
        await clock.advance(10)
        (run,) = await all_runs(sched, "j")
    assert sent == [("emails", f"j@{(T0 + timedelta(seconds=10)).isoformat()}")]
    assert run.status == RunStatus.scheduled and run.queue_job_id == "queue-job-1"


async def test_queue_and_expect_every_are_stored_with_the_job(
    sched: Scheduler, store: MemoryStore
) -> None:
    sched.add_job(
        "j", trigger=Interval(seconds=10), handler=RECORD, queue="emails", expect_every=3600
    )
    async with sched:
        stored = await store.get_job("j")
    assert isinstance(stored, StoredJob)
    assert stored.definition["queue"] == "emails"
    assert stored.definition["expect_every_s"] == 3600


async def test_pause_resume_and_remove_before_start_apply_to_stored_jobs(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    first = make_scheduler()
    for job_id in ("keep-paused", "to-resume", "to-remove"):
        first.add_job(job_id, trigger=Interval(seconds=10), handler=RECORD)
    first.pause("to-resume", note="was paused")
    async with first:
        pass
    assert (await store.get_job("to-resume")).paused  # type: ignore[union-attr]
    second = make_scheduler()
    for job_id in ("keep-paused", "to-resume", "to-remove"):
        second.add_job(job_id, trigger=Interval(seconds=10), handler=RECORD)
    second.pause("keep-paused", note="from code")
    second.resume("to-resume")
    second.remove("to-remove")
    async with second:
        assert [(j.id, j.paused, j.pause_note) for j in second.jobs()] == [
            ("keep-paused", True, "from code"),
            ("to-resume", False, None),
        ]
    assert await store.get_job("to-remove") is None
    assert not (await store.get_job("to-resume")).paused  # type: ignore[union-attr]


def test_defining_the_same_id_twice_with_conflict_error_is_refused(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    sched = make_scheduler()
    sched.add_job("j", trigger=Interval(seconds=10), handler=RECORD)
    with pytest.raises(JobConflictError):
        sched.add_job("j", trigger=Interval(seconds=20), handler=RECORD, conflict="error")
    kept = sched.add_job("j", trigger=Interval(seconds=30), handler=RECORD, conflict="keep")
    assert kept.trigger == Interval(seconds=10)
    sched.add_job("j", trigger=Interval(seconds=40), handler=RECORD)
    assert sched.job("j").job.trigger == Interval(seconds=40)


async def test_a_first_fire_missed_while_down_is_run_after_the_restart(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    engine_samples.CALLS.clear()
    first = make_scheduler()
    first.add_job("once", trigger=Date(T0 + timedelta(minutes=5)), handler=RECORD)
    async with first:
        await clock.advance(60)  # stopped before the job ever fired
    await clock.advance(3600)
    second = make_scheduler()
    async with second:
        await clock.advance(1)
        runs = await all_runs(second, "once")
    assert [r.scheduled_for for r in runs] == [T0 + timedelta(minutes=5)]


async def test_a_job_stored_without_state_while_down_has_its_first_fire_missed_not_dropped(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    # `agentcron jobs add` (or `jobs import`) stores a job with no scheduling state; a
    # scheduler started after its first fire scheduled it from then on: that fire was
    # neither run (misfire `run_once`) nor recorded, and a one-off job never ran at all.
    engine_samples.CALLS.clear()
    template = make_scheduler()
    for job_id, trigger in (("daily", "0 9 * * *"), ("reminder", Date(at(600)))):
        job = template.add_job(job_id, trigger=trigger, handler=RECORD)
        await store.save_job(
            StoredJob(id=job_id, definition=job_to_definition(job), created_at=T0),
            actor="cli",
        )
    await clock.advance(24 * 3600)  # no scheduler ran meanwhile
    sched = make_scheduler()
    async with sched:
        await clock.advance(1)
        daily = await all_runs(sched, "daily")
        reminder = await all_runs(sched, "reminder")
    assert [r.scheduled_for for r in reminder] == [at(600)]
    assert [r.scheduled_for for r in daily] == [T0 + timedelta(hours=9)]  # run_once
    assert sorted(call[0] for call in engine_samples.CALLS) == ["daily", "reminder"]


class DyingStore(MemoryStore):
    """A shared store whose node "dies" at `dead = True`: the run records it writes from
    then on never arrive (as a SIGKILLed process's)."""

    dead = False

    async def record_run(self, run: RunRecord) -> bool:
        return True if self.dead else await super().record_run(run)

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        return [True] * len(runs) if self.dead else await super().record_runs(runs)


def dead_run(fire: datetime) -> RunRecord:
    """A run of job `j` left `running` by a node that died, its lease expired at T0 - 5 min."""
    return RunRecord(
        run_id="dead-run",
        job_id="j",
        scheduled_for=fire,
        status=RunStatus.running,
        attempt=1,
        started_at=fire,
        node_id="dead-node",
        lease_expires_at=T0 - timedelta(minutes=5),
    )


async def test_a_stop_during_the_retry_delay_of_an_interrupted_run_records_it_cancelled(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    # The retry stayed `running`: the next node took it for interrupted by a dead node
    # ("stopped renewing the run's lease") and spent another attempt on it.
    engine_samples.CALLS.clear()
    fire = T0 - timedelta(minutes=10)
    retry = {"max_attempts": 3, "strategy": "fixed", "base_delay": 60, "max_delay": 60}
    first = make_scheduler()
    first.add_job("j", trigger="0 0 1 1 *", handler=RECORD, retry=retry)
    async with first:
        pass
    await store.record_run(dead_run(fire))
    taker = make_scheduler(node_id="taker")
    await taker.start()
    await taker.stop(grace_s=0)  # during the retry delay
    await clock.advance(700)
    async with make_scheduler(node_id="heir") as heir:
        await clock.advance(61)
        runs = await all_runs(heir, "j")
    assert engine_samples.CALLS == []
    runs.sort(key=lambda r: r.attempt)
    assert [(r.attempt, str(r.status), r.node_id) for r in runs] == [
        (1, "interrupted", "dead-node"),
        (2, "cancelled", "taker"),
    ]
    assert runs[1].error == "cancelled: scheduler stopped"


async def test_the_retry_of_an_interrupted_run_is_recorded_before_its_delay(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    """So that a node dying between takeover and retry loses nothing: the retry is itself
    a leased running run that the next node takes over."""
    store = DyingStore()
    make_scheduler = functools.partial(make_scheduler, store=store)
    engine_samples.CALLS.clear()
    fire = T0 - timedelta(minutes=10)
    first = make_scheduler()
    first.add_job(
        "j",
        trigger="0 0 1 1 *",
        handler=RECORD,
        retry={"max_attempts": 3, "strategy": "fixed", "base_delay": 60, "max_delay": 60},
    )
    async with first:
        pass
    await store.record_run(dead_run(fire))
    taker = make_scheduler(node_id="taker")
    await taker.start()
    running = [r for r in await all_runs(taker, "j") if r.status == RunStatus.running]
    assert [(r.attempt, r.node_id) for r in running] == [(2, "taker")]
    store.dead = True  # the taker dies during the retry delay
    await taker.stop(grace_s=0)
    store.dead = False
    await clock.advance(700)  # its lease (600 s) expires
    heir = make_scheduler(node_id="heir")
    async with heir:
        await clock.advance(61)
        runs = await all_runs(heir, "j")
    assert engine_samples.CALLS == [("j", fire.isoformat(), 3)]
    assert {r.occurrence_key for r in runs} == {f"j@{fire.isoformat()}"}
    assert sorted((r.attempt, str(r.status)) for r in runs) == [
        (1, "interrupted"),
        (2, "interrupted"),
        (3, "succeeded"),
    ]


class SlowOpenStore(MemoryStore):
    """A store whose `open()` waits until the test lets it finish (a slow SQLite open)."""

    def __init__(self) -> None:
        super().__init__()
        self.opening = asyncio.Event()
        self.may_open = asyncio.Event()

    async def open(self) -> None:
        self.opening.set()
        await self.may_open.wait()
        await super().open()


async def test_a_stop_requested_before_serve_makes_serve_return_once_started() -> None:
    sched = Scheduler(clock=VirtualClock(T0))
    sched.add_job("tick", trigger="* * * * *", handler=noop)
    sched.request_stop()
    await asyncio.wait_for(sched.serve(), 5)  # (a real bound: it must not wait for a stop)
    assert sched.health()["status"] == "stopped"


async def test_a_stop_requested_while_serve_starts_wins() -> None:
    store = SlowOpenStore()
    sched = Scheduler(store, clock=VirtualClock(T0))
    serving = asyncio.ensure_future(sched.serve())
    await store.opening.wait()
    sched.request_stop()
    store.may_open.set()
    await asyncio.wait_for(serving, 5)
    assert sched.health()["status"] == "stopped"


async def test_stop_during_a_slow_start_leaves_the_scheduler_stopped() -> None:
    store = SlowOpenStore()
    sched = Scheduler(store, clock=VirtualClock(T0))
    starting = asyncio.ensure_future(sched.start())
    await store.opening.wait()
    stopping = asyncio.ensure_future(sched.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # it waits for the start
    store.may_open.set()
    await asyncio.wait_for(asyncio.gather(starting, stopping), 5)
    assert sched.health()["status"] == "stopped"
    assert sched._loop_task is not None and sched._loop_task.done()


class SlowToUnwindStore(MemoryStore):
    """A store whose `interrupt_expired` (asked by the lease maintenance task), once
    `armed`, blocks, and whose cancellation takes until `release` is set to unwind."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        if not self.armed:  # (`start()` asks too)
            return await super().interrupt_expired(now)
        self.entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            await self.release.wait()
        raise AssertionError("unreachable")


async def test_a_stop_cancelled_while_it_waits_for_its_tasks_to_unwind_is_cancelled() -> None:
    # `stop()` waited for its own tasks with `suppress(CancelledError): await task`, which
    # took a cancellation of `stop()` itself (a second Ctrl+C, a timeout around it) for
    # the task's and went on as if nobody had asked.
    store = SlowToUnwindStore()
    clock = VirtualClock(T0)
    sched = Scheduler(store, clock=clock, lease_s=30)
    await sched.start()
    store.armed = True
    await clock.advance(10)  # the lease maintenance asks the store, which blocks
    await asyncio.wait_for(store.entered.wait(), 5)  # (a real bound: it must not hang)
    stopping = asyncio.ensure_future(sched.stop())
    maintenance = sched._maintenance_task
    assert maintenance is not None
    while not maintenance.cancelling():  # `stop()` cancelled it and waits for it
        await asyncio.sleep(0)
    stopping.cancel()
    store.release.set()
    await asyncio.gather(stopping, return_exceptions=True)
    assert stopping.cancelled() and maintenance.cancelled()
    await sched.stop()  # a stop cut short is finished by another
    assert sched.health()["status"] == "stopped"


async def test_no_task_is_left_behind_after_the_scheduler_stops() -> None:
    received: list[str] = []

    async def on_event(event: Event) -> None:
        received.append(event.type)

    for _ in range(3):
        clock = VirtualClock(T0)
        sched = Scheduler(clock=clock)
        sched.add_job("tick", trigger="* * * * * *", handler=noop)
        sched.events.subscribe(on_event)
        async with sched:
            await clock.advance(1)
            await sched.drain()
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, [t.get_coro() for t in left]
    assert "run.succeeded" in received  # delivered before the delivery task ended


async def test_a_subscriber_still_gets_events_after_its_scheduler_stopped_and_started() -> None:
    clock = VirtualClock(T0)
    sched = Scheduler(clock=clock)
    received: list[str] = []
    sched.events.subscribe(lambda e: received.append(e.type))
    async with sched:
        pass
    sched.add_job("later", trigger="* * * * *", handler=noop)  # published while stopped
    await sched.events.drain()
    async with sched:
        sched.pause("later")
        await sched.events.drain()
    assert received.count("job.added") == 1 and "job.paused" in received


async def test_an_interrupted_run_of_a_queue_is_left_to_its_queue_to_retry(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    # The engine retried it as well: a second run recorded for a fire its queue still held
    # (exactly one layer retries; for a queue's run, the queue's `ScheduledJobRunner`).
    retry = {"max_attempts": 3, "strategy": "fixed", "base_delay": 60, "max_delay": 60}
    first = make_scheduler()
    first.add_job("j", trigger="0 0 1 1 *", handler=RECORD, retry=retry, queue="agent")
    async with first:
        pass
    await store.record_run(dead_run(T0 - timedelta(minutes=10))._replace(queue_job_id="7"))
    async with make_scheduler(node_id="taker") as taker:
        await clock.advance(61)
        runs = await all_runs(taker, "j")
    assert [(r.attempt, str(r.status)) for r in runs] == [(1, "interrupted")]
