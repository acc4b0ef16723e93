from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from agentcron.engine import JobNotFoundError, Scheduler, SchedulerNotRunningError
from agentcron.handlers import RunContext
from agentcron.models import RunStatus
from agentcron.policies import JobConfigError
from agentcron.testing import VirtualClock
from agentcron.triggers import Date, Interval

from .conftest import T0, EventLog, all_runs, noop, statuses


async def test_a_cron_job_fires_at_each_scheduled_second_and_never_early(
    sched: Scheduler, clock: VirtualClock
) -> None:
    seen: list[tuple[object, object, float]] = []

    @sched.cron("*/10 * * * * *", id="tick")
    async def tick(ctx: RunContext) -> None:
        seen.append((ctx.scheduled_for, clock.now(), ctx.lateness_s))

    async with sched:
        await clock.advance(35)
    assert [s[0] for s in seen] == [T0 + timedelta(seconds=s) for s in (10, 20, 30)]
    assert all(scheduled == started and lateness == 0 for scheduled, started, lateness in seen)


async def test_the_context_tells_a_late_run_its_lateness_as_a_timedelta_and_in_seconds(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # DESIGN 2.13 names it `ctx.lateness`; only `lateness_s` existed.
    seen: list[tuple[timedelta, float]] = []

    async def slow(ctx: RunContext) -> None:
        seen.append((ctx.lateness, ctx.lateness_s))
        await clock.sleep(15)

    sched.add_job("j", trigger=Interval(seconds=10), handler=slow, overlap="queue")
    await sched.start()  # (the fixture stops it without waiting for the run at 40)
    await clock.advance(41)  # 10 runs until 25; 20, queued, starts then
    assert seen[:2] == [(timedelta(0), 0.0), (timedelta(seconds=5), 5.0)]


async def test_runs_are_listed_newest_first_with_the_run_fields(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("tick", trigger=Interval(seconds=5), handler=noop)
    async with sched:
        await clock.advance(15)
        runs = await sched.runs("tick")
        assert [r.scheduled_for for r in runs] == [T0 + timedelta(seconds=s) for s in (15, 10, 5)]
        assert all(r.status == RunStatus.succeeded and r.node_id == "node-a" for r in runs)
        assert runs[0].occurrence_key == f"tick@{(T0 + timedelta(seconds=15)).isoformat()}"
        assert len(await sched.runs("tick", limit=2)) == 2


async def test_run_now_fires_through_the_policies_and_returns_the_finished_run(
    sched: Scheduler, clock: VirtualClock
) -> None:
    attempts: list[int] = []

    async def flaky(ctx: RunContext) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("not yet")

    sched.add_job(
        "flaky",
        trigger="0 0 1 1 *",
        handler=flaky,
        retry={"max_attempts": 3, "strategy": "fixed", "base_delay": 2, "max_delay": 2},
    )
    async with sched:
        import asyncio

        task = asyncio.ensure_future(sched.run_now("flaky"))
        await clock.advance(4)
        run = await task
    assert run.status == RunStatus.succeeded
    assert run.attempt == 3 and attempts == [1, 2, 3]
    assert run.scheduled_for == T0


async def test_two_run_now_in_the_same_clock_tick_are_two_recorded_runs(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # The second was returned as a `skipped(concurrency)` record that was never stored.
    sched.add_job("j", trigger="0 0 1 1 *", handler=noop, overlap="allow")
    async with sched:
        first, second = await asyncio.gather(sched.run_now("j"), sched.run_now("j"))
        stored = await sched.runs("j")
    assert (first.status, second.status) == (RunStatus.succeeded, RunStatus.succeeded)
    assert {first.scheduled_for, second.scheduled_for} == {T0, T0 + timedelta(microseconds=1)}
    assert {r.run_id for r in stored} == {first.run_id, second.run_id}


async def test_run_now_needs_a_started_scheduler(sched: Scheduler) -> None:
    sched.add_job("j", trigger="* * * * *", handler=noop)
    with pytest.raises(SchedulerNotRunningError):
        await sched.run_now("j")


async def test_jobs_and_job_show_the_definition_and_live_state(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job(
        "b",
        trigger="0 9 * * *",
        handler=noop,
        timezone="Europe/Berlin",
        tags=["mail"],
        name="Morning mail",
    )
    sched.add_job("a", trigger=Interval(minutes=1), handler=noop)
    async with sched:
        assert [j.id for j in sched.jobs()] == ["a", "b"]
        view = sched.job("b")
        assert view.job.name == "Morning mail" and view.job.tags == ("mail",)
        assert view.next_run == T0 + timedelta(hours=8)  # 09:00 CET
        data = view.to_dict()
        assert data["next_run"] == "2026-03-01T08:00:00+00:00"
        assert data["timezone"] == "Europe/Berlin"
        with pytest.raises(JobNotFoundError):
            sched.job("nope")


async def test_health_reports_counts_and_the_next_fire(sched: Scheduler) -> None:
    sched.add_job("a", trigger=Interval(minutes=1), handler=noop)
    assert sched.health()["status"] == "stopped"
    async with sched:
        health = sched.health()
        assert health["status"] == "running"
        assert health["jobs"] == 1 and health["active_runs"] == 0
        assert health["next_fire"] == (T0 + timedelta(minutes=1)).isoformat()


async def test_every_change_to_a_job_is_published_as_an_event(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    async with sched:
        sched.add_job("j", trigger=Interval(seconds=10), handler=noop)
        sched.update("j", trigger=Interval(seconds=20))
        sched.pause("j", note="travelling")
        sched.resume("j")
        await clock.advance(20)
        sched.remove("j")
        await clock.advance(1)
    await sched.events.drain()
    types = event_log.types()
    for expected in (
        "job.added",
        "job.updated",
        "job.paused",
        "job.resumed",
        "run.started",
        "run.succeeded",
        "job.removed",
    ):
        assert expected in types
    assert event_log.of("job.paused")[0].note == "travelling"


async def test_update_reschedules_without_losing_history(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=noop)
    async with sched:
        await clock.advance(20)
        sched.update("j", trigger=Interval(seconds=60))
        assert sched.job("j").next_run == T0 + timedelta(seconds=60)
        await clock.advance(40)
        runs = await all_runs(sched, "j")
    assert [r.scheduled_for - T0 for r in runs] == [timedelta(seconds=s) for s in (10, 20, 60)]


async def test_a_date_job_fires_once_and_then_has_no_next_run(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("once", trigger=Date(T0 + timedelta(seconds=30)), handler=noop)
    async with sched:
        await clock.advance(120)
        assert statuses(await all_runs(sched, "once")) == ["succeeded"]
        assert sched.job("once").next_run is None


async def test_a_reboot_job_fires_once_at_start(sched: Scheduler, clock: VirtualClock) -> None:
    sched.add_job("boot", trigger="@reboot", handler=noop)
    async with sched:
        await clock.advance(3600)
        runs = await all_runs(sched, "boot")
    assert [r.scheduled_for for r in runs] == [T0]


async def test_start_end_and_max_runs_bound_the_fires(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job(
        "window",
        trigger=Interval(seconds=10),
        handler=noop,
        start=T0 + timedelta(seconds=25),
        end=T0 + timedelta(seconds=55),
    )
    sched.add_job("three", trigger=Interval(seconds=10), handler=noop, max_runs=3)
    async with sched:
        await clock.advance(100)
        window = await all_runs(sched, "window")
        three = await all_runs(sched, "three")
    assert [r.scheduled_for - T0 for r in window] == [timedelta(seconds=s) for s in (30, 40, 50)]
    assert len(three) == 3


async def test_max_runs_counts_every_recorded_run_the_same_before_and_after_a_restart(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # run_now runs did not count until a restart, which counted every recorded run: a job
    # with max_runs=3 and one run_now ran 4 times without a restart and 3 with one.
    first = make_scheduler()
    first.add_job("three", trigger=Interval(seconds=10), handler=noop, max_runs=3)
    async with first:
        await clock.advance(15)  # fires at 10
        await first.run_now("three")
        await clock.advance(100)  # fires at 20; then no more
        assert len(await all_runs(first, "three")) == 3
        assert first.job("three").next_run is None
    second = make_scheduler()
    second.add_job("three", trigger=Interval(seconds=10), handler=noop, max_runs=3)
    async with second:
        await clock.advance(100)
        assert len(await all_runs(second, "three")) == 3


async def test_a_run_now_that_reaches_max_runs_cancels_the_next_scheduled_fire(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("two", trigger=Interval(seconds=10), handler=noop, max_runs=2)
    async with sched:
        await clock.advance(15)  # fires at 10
        await sched.run_now("two")
        assert sched.job("two").next_run is None
        await clock.advance(100)
        assert len(await all_runs(sched, "two")) == 2


async def test_a_fire_skipped_by_the_misfire_policy_counts_toward_max_runs(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler()
    sched.add_job("two", trigger=Interval(seconds=10), handler=noop, max_runs=2, misfire="skip")
    async with sched:
        await clock.advance(15)  # fires at 10
        await clock.suspend(timedelta(minutes=5))  # missed fires: one skip record
        await clock.advance(100)
        assert statuses(await all_runs(sched, "two")) == ["succeeded", "skipped(misfire)"]


async def test_jitter_delays_each_fire_within_bounds_but_keeps_the_scheduled_time(
    sched: Scheduler, clock: VirtualClock
) -> None:
    started: list[tuple[object, float]] = []

    async def job(ctx: RunContext) -> None:
        started.append((ctx.scheduled_for, (clock.now() - ctx.scheduled_for).total_seconds()))

    sched.add_job("j", trigger=Interval(seconds=60), handler=job, jitter=20)
    async with sched:
        await clock.advance(60 * 20 + 30)
    assert len(started) == 20
    assert [s[0] for s in started] == [T0 + timedelta(seconds=60 * k) for k in range(1, 21)]
    delays = [s[1] for s in started]
    assert all(0 <= d < 20 for d in delays)
    assert len(set(delays)) > 10


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"overlap": "sometimes"}, "overlap"),
        ({"overlap": {"policy": "concurrent", "max_concurrent": 0}}, "overlap.max_concurrent"),
        ({"retry": {"max_attempts": 3, "base_delay": 10, "max_delay": 1}}, "retry.max_delay"),
        ({"misfire": "whenever"}, "misfire"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"jitter": -5}, "jitter"),
        ({"max_runs": 0}, "max_runs"),
        ({"timezone": "Nowhere/City"}, "timezone"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_fail_at_add_job_naming_the_field(
    make_scheduler: Callable[..., Scheduler], options: dict[str, object], field: str
) -> None:
    sched = make_scheduler()
    with pytest.raises(JobConfigError) as info:
        sched.add_job("j", trigger="* * * * *", handler=noop, **options)
    assert info.value.field == field
    assert sched.jobs() == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        # Each was accepted: the zone failed every later `add_job` (naming the job's own
        # `timezone`), the store failed `start()` with an AttributeError, and the rest
        # were kept as given.
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": 5}, "timezone"),
        ({"store": 5}, "store"),
        ({"node_id": 5}, "node_id"),
        ({"node_id": ""}, "node_id"),
        ({"node_id": "a\nb"}, "node_id"),
        ({"stop_grace_s": -1}, "stop_grace_s"),
        ({"stop_grace_s": float("nan")}, "stop_grace_s"),
        ({"stop_grace_s": 1e300}, "stop_grace_s"),
        ({"lease_s": float("inf")}, "lease_s"),
        ({"lease_s": "60"}, "lease_s"),
    ],
)
def test_bad_scheduler_arguments_fail_at_construction_naming_the_argument(
    make_scheduler: Callable[..., Scheduler], arguments: dict[str, object], field: str
) -> None:
    with pytest.raises(JobConfigError) as info:
        make_scheduler(**arguments)
    assert info.value.field == field
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("trigger", "handler"),
    [
        ("61 * * * *", "engine.engine_samples:record"),
        (Interval, "engine.engine_samples:record"),
        ("* * * * *", "no_such_module_xyz:run"),
        ("* * * * *", "engine.engine_samples:missing"),
        ("* * * * *", 42),
    ],
)
def test_bad_triggers_and_handler_references_fail_at_add_job(
    make_scheduler: Callable[..., Scheduler], trigger: object, handler: object
) -> None:
    sched = make_scheduler()
    if trigger is Interval:
        with pytest.raises(ValueError, match="interval"):
            sched.add_job("j", trigger=Interval(seconds=0), handler=handler)
        return
    with pytest.raises(JobConfigError):
        sched.add_job("j", trigger=trigger, handler=handler)


async def test_a_disabled_job_is_listed_but_never_fires_until_enabled(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=noop, enabled=False)
    async with sched:
        await clock.advance(30)
        assert await sched.runs("j") == [] and sched.job("j").next_run is None
        sched.update("j", enabled=True)
        await clock.advance(10)
        assert len(await sched.runs("j")) == 1


async def test_every_event_the_engine_publishes_round_trips_through_json(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    import json

    from agentcron.events import event_from_dict

    async def fails() -> None:
        raise RuntimeError("down")

    async def slow() -> None:
        await clock.sleep(100)

    sched.add_job(
        "fails",
        trigger=Interval(seconds=10),
        handler=fails,
        retry=2,
        circuit={"failure_threshold": 1, "reset_timeout": 15},
    )
    sched.add_job("slow", trigger=Interval(seconds=10), handler=slow, timeout=15)
    sched.add_job("hourly", trigger="0 * * * *", handler=noop)
    async with sched:
        await clock.advance(40)
        await clock.suspend(timedelta(hours=3))
        await clock.advance(20)
        sched.pause("slow")
        await sched.stop(grace_s=0)  # runs still active are cancelled (run.cancelled)
    await sched.events.drain()
    types = set(event_log.types())
    assert {
        "run.started",
        "run.failed",
        "run.retrying",
        "run.timed_out",
        "run.skipped",
        "run.missed",
        "run.cancelled",
        "circuit.opened",
        "circuit.half_open",
        "job.paused",
    } <= types
    for event in event_log.events:
        assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_job_defaults_fill_the_options_a_job_leaves_out() -> None:
    sched = Scheduler(job_defaults={"retry": 3, "overlap": "skip", "tags": ["agent"]})
    job = sched.add_job("j", trigger="0 0 1 1 *", handler=noop)
    assert (job.retry.max_attempts, job.overlap.policy, job.tags) == (3, "skip", ("agent",))
    own = sched.add_job("k", trigger="0 0 1 1 *", handler=noop, retry=1, tags=[])
    assert (own.retry.max_attempts, own.tags) == (1, ())


def test_job_defaults_cannot_give_what_each_job_must_give_itself() -> None:
    with pytest.raises(JobConfigError, match="job_defaults"):
        Scheduler(job_defaults={"trigger": "* * * * *"})


@pytest.mark.parametrize(("misfire", "expected"), [("run_once", "succeeded"),
                                                    ("skip", "skipped(misfire)")])  # fmt: skip
async def test_a_one_off_whose_instant_passes_before_the_start_is_missed_not_dropped(
    sched: Scheduler, clock: VirtualClock, misfire: str, expected: str
) -> None:
    # It was scheduled from the start, after its only fire: never run, never recorded.
    sched.add_job("once", trigger=Date(T0 + timedelta(seconds=5)), handler=noop, misfire=misfire)
    await clock.advance(60)
    async with sched:
        await clock.advance(0)
        await sched.drain()
        runs = await all_runs(sched, "once")
    assert statuses(runs) == [expected]
    assert runs[0].scheduled_for == T0 + timedelta(seconds=5)


async def test_a_one_off_added_for_now_while_running_fires(
    sched: Scheduler, clock: VirtualClock
) -> None:
    async with sched:
        sched.add_job("now", trigger=Date(clock.now()), handler=noop)
        sched.add_job("just-gone", trigger=Date(clock.now() - timedelta(seconds=0.5)),
                      handler=noop)  # fmt: skip
        await clock.advance(0)
        await sched.drain()
        assert statuses(await all_runs(sched, "now")) == ["succeeded"]
        assert statuses(await all_runs(sched, "just-gone")) == ["succeeded"]


async def test_a_one_off_past_its_end_or_paused_past_its_instant_does_not_fire(
    sched: Scheduler, clock: VirtualClock
) -> None:
    at = T0 + timedelta(seconds=5)
    sched.add_job("ended", trigger=Date(at), handler=noop, end=at - timedelta(seconds=1))
    sched.add_job("paused", trigger=Date(at), handler=noop)
    async with sched:
        sched.pause("paused")
        await clock.advance(60)
        sched.resume("paused")  # fires missed while paused are not run
        await clock.advance(1)
        await sched.drain()
        assert await all_runs(sched, "ended") == []
        assert await all_runs(sched, "paused") == []
