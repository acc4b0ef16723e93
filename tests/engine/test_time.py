"""Time on a virtual clock: misfires after a suspend, DST days, clock steps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agentcron.engine import Scheduler
from agentcron.handlers import RunContext
from agentcron.models import RunStatus
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import CronTrigger, Interval

from .conftest import T0, EventLog, all_runs, noop, statuses

HOUR = timedelta(hours=1)


async def suspended_hourly_job(
    sched: Scheduler, clock: VirtualClock, misfire: object
) -> list[datetime]:
    """An hourly job; the machine sleeps for 8 hours at 00:30 and wakes at 08:30."""
    started: list[datetime] = []

    async def job(ctx: RunContext) -> None:
        started.append(ctx.scheduled_for)

    sched.add_job("hourly", trigger="0 * * * *", handler=job, misfire=misfire)
    await sched.start()
    await clock.advance(30 * 60)
    await clock.suspend(8 * HOUR)
    await clock.advance(1)
    return started


async def test_run_once_coalesces_an_8_hour_sleep_into_one_run(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    started = await suspended_hourly_job(sched, clock, "run_once")
    assert started == [T0 + 8 * HOUR]
    await sched.events.drain()
    (missed,) = event_log.of("run.missed")
    assert missed.missed == 8 and missed.action == "run_once"
    assert missed.scheduled_for == T0 + 8 * HOUR
    assert sched.health()["last_clock_jump_s"] == pytest.approx(8 * 3600)


@pytest.mark.parametrize("misfire", ["run_once", "run_all"])
async def test_a_fire_run_late_by_the_misfire_policy_says_how_late_it_is(
    sched: Scheduler, clock: VirtualClock, misfire: str
) -> None:
    late: dict[datetime, tuple[float, datetime]] = {}

    async def job(ctx: RunContext) -> None:
        late[ctx.scheduled_for] = (ctx.lateness_s, clock.now())

    sched.add_job("hourly", trigger="0 * * * *", handler=job, misfire=misfire)
    await sched.start()
    await clock.advance(30 * 60)
    await clock.suspend(8 * HOUR)  # asleep from 00:30 to 08:30
    await clock.advance(1)
    assert len(late) == (1 if misfire == "run_once" else 8)
    for scheduled_for, (lateness_s, started) in late.items():  # read to drop stale work
        assert started >= T0 + 8 * HOUR + timedelta(minutes=30)
        assert lateness_s == (started - scheduled_for).total_seconds()


async def test_skip_runs_nothing_after_an_8_hour_sleep_and_records_it(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    started = await suspended_hourly_job(sched, clock, "skip")
    assert started == []
    runs = await all_runs(sched, "hourly")
    assert statuses(runs) == ["skipped(misfire)"]
    await sched.events.drain()
    assert event_log.of("run.missed")[0].missed == 8
    # and it fires normally again at 09:00
    await clock.advance(30 * 60)
    assert started == [T0 + 9 * HOUR]


async def test_run_all_runs_each_fire_missed_in_an_8_hour_sleep_in_order(
    sched: Scheduler, clock: VirtualClock
) -> None:
    started = await suspended_hourly_job(sched, clock, "run_all")
    assert started == [T0 + h * HOUR for h in range(1, 9)]


class SlowClaimStore(MemoryStore):
    """Claims of fires missed long ago (a catch-up's) wait for `gate` while it is closed:
    the time a real store's round trip takes, made as long as a test needs."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def start_fires(self, fires: Any, node_id: str, *, now: datetime) -> list[bool]:
        if all(now - fire.scheduled_for > timedelta(seconds=5) for fire in fires):
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        return await super().start_fires(fires, node_id, now=now)


async def test_run_all_runs_its_missed_fires_in_order_though_on_time_fires_come_between(
    clock: VirtualClock,
) -> None:
    # A fire that came between two catch-up runs (while the next one was being claimed)
    # found the job idle and started, so the next catch-up fire met the job busy and was
    # skipped for overlap, and an on-time fire ran before older missed ones.
    store = SlowClaimStore()
    started: list[datetime] = []

    async def job(ctx: RunContext) -> None:
        started.append(ctx.scheduled_for)

    sched = Scheduler(store=store, clock=clock, node_id="n")
    sched.add_job("j", trigger=Interval(seconds=10), handler=job, misfire="run_all")
    async with sched:
        await clock.advance(5)
        store.gate.clear()
        await clock.suspend(60)  # asleep from 5 s to 65 s: fires at 10, ..., 60 s missed
        async with asyncio.timeout(5):
            while not store.waiting:
                await asyncio.sleep(0)
        await clock.advance(5)  # the on-time fire of 70 s comes while it waits
        store.gate.set()
        await clock.advance(1)
        await sched.drain()
        runs = await all_runs(sched, "j")
    missed = [T0 + timedelta(seconds=s) for s in range(10, 61, 10)]
    assert started == missed
    # The fire that came during the catch-up met the job busy: its overlap policy skipped it.
    assert statuses(sorted(runs, key=lambda r: r.scheduled_for)) == ["succeeded"] * 6 + [
        "skipped(overlap)"
    ]


async def test_run_all_is_bounded_by_max_catchup(sched: Scheduler, clock: VirtualClock) -> None:
    started = await suspended_hourly_job(sched, clock, {"policy": "run_all", "max_catchup": 3})
    assert started == [T0 + h * HOUR for h in (6, 7, 8)]


async def test_the_catchup_window_bounds_how_far_back_misfires_count(
    sched: Scheduler, clock: VirtualClock
) -> None:
    started = await suspended_hourly_job(
        sched, clock, {"policy": "run_all", "catchup_window": 2.25 * 3600}
    )
    assert started == [T0 + h * HOUR for h in (7, 8)]


async def test_an_every_second_job_after_a_week_asleep_runs_once_not_a_burst(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    sched.add_job("fast", trigger="* * * * * *", handler=noop, misfire={"grace": 0.5})
    await sched.start()
    await clock.advance(2)
    await clock.suspend(timedelta(days=7))
    await clock.advance(0.5)
    runs = await all_runs(sched, "fast")
    assert len(runs) == 3
    await sched.events.drain()
    (missed,) = event_log.of("run.missed")
    assert missed.missed == pytest.approx(7 * 86400, rel=0.01)


@pytest.mark.parametrize(
    ("misfire", "expected"),
    [
        ("run_once", ["succeeded"]),
        ("skip", ["skipped(misfire)", "succeeded"]),
        ("run_all", ["succeeded"] * 4),
    ],
)
async def test_a_sleep_shorter_than_a_long_grace_runs_one_fire_not_a_burst_unless_run_all(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog, misfire: str, expected: list[str]
) -> None:
    # Asleep 270 s with a grace of 300 s, every minute: the fires of 00:02-00:05 were all
    # within grace, and all four ran back to back at 00:05:30, whatever the policy.
    sched.add_job("m", trigger="* * * * *", handler=noop,
                  misfire={"policy": misfire, "grace": 300})  # fmt: skip
    await sched.start()
    await clock.advance(60)
    await clock.suspend(270)
    await clock.advance(1)
    runs = await all_runs(sched, "m")
    assert statuses(runs[1:]) == expected
    assert runs[-1].scheduled_for == T0 + timedelta(minutes=5)
    await sched.events.drain()
    if misfire != "run_all":
        (missed,) = event_log.of("run.missed")
        assert (missed.missed, missed.scheduled_for) == (3, T0 + timedelta(minutes=4))


async def test_an_every_second_job_woken_on_a_whole_second_runs_once_with_the_default_grace(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("fast", trigger="* * * * * *", handler=noop)
    await sched.start()
    await clock.advance(2)
    await clock.suspend(8 * HOUR)  # wakes on a whole second: two fires within 1 s of it
    await clock.advance(0)
    runs = await all_runs(sched, "fast")
    assert len(runs) == 3


async def test_a_backward_clock_step_never_reruns_a_fire_that_already_ran(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=noop)
    await sched.start()
    await clock.advance(35)  # fires at 10, 20, 30
    await clock.step_wall(timedelta(seconds=-60))  # wall reads T0 - 25s
    await clock.advance(70)  # wall back to T0 + 45s
    runs = await all_runs(sched, "j")
    fires = [int((r.scheduled_for - T0).total_seconds()) for r in runs]
    assert fires == [10, 20, 30, 40]
    assert len(set(fires)) == len(fires)
    assert sched.health()["last_clock_jump_s"] == pytest.approx(-60)


async def test_a_forward_ntp_step_within_grace_runs_the_fire_normally(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("j", trigger=Interval(seconds=10), handler=noop, misfire={"grace": 5})
    await sched.start()
    await clock.advance(9)
    await clock.step_wall(timedelta(seconds=3))  # now T0+12: fire 10 is 2 s late
    runs = await all_runs(sched, "j")
    assert [(r.scheduled_for - T0).total_seconds() for r in runs] == [10]
    assert runs[0].status == RunStatus.succeeded


BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def expected_fires(expr: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    trigger = CronTrigger(expr, tz)
    out, cursor = [], start
    while (nxt := trigger.next_fire(cursor)) is not None and nxt <= end:
        out.append(nxt)
        cursor = nxt
    return out


@pytest.mark.parametrize(
    ("tz", "day", "label"),
    [
        (BERLIN, datetime(2026, 3, 29, tzinfo=UTC), "Europe/Berlin spring forward 02:00->03:00"),
        (BERLIN, datetime(2026, 10, 25, tzinfo=UTC), "Europe/Berlin fall back 03:00->02:00"),
        (NEW_YORK, datetime(2026, 3, 8, 5, tzinfo=UTC), "America/New_York spring forward"),
        (NEW_YORK, datetime(2026, 11, 1, 4, tzinfo=UTC), "America/New_York fall back"),
    ],
)
async def test_dst_days_through_the_engine_follow_the_cron_rules(
    make_scheduler: object, tz: ZoneInfo, day: datetime, label: str
) -> None:
    start = day - timedelta(hours=3)
    clock = VirtualClock(start)
    sched = make_scheduler(clock=clock, lease_s=3600)  # type: ignore[operator]
    sched.add_job("daily", trigger="30 2 * * *", handler=noop, timezone=tz.key)
    sched.add_job("hourly", trigger="15 * * * *", handler=noop, timezone=tz.key)
    end = start + timedelta(hours=30)
    async with sched:
        await clock.advance(end - start)
        daily = [r.scheduled_for for r in await all_runs(sched, "daily")]
        hourly = [r.scheduled_for for r in await all_runs(sched, "hourly")]
    assert daily == expected_fires("30 2 * * *", tz, start, end), label
    # the 02:30 job runs exactly once on the transition day, whatever the wall clock does
    assert [d.astimezone(tz).date() for d in daily].count(day.astimezone(tz).date()) <= 1
    assert len(daily) == len(set(daily))
    assert hourly == expected_fires("15 * * * *", tz, start, end), label
    # wildcard hours: every real hour once (24 +/- 1 on the transition day)
    assert len(hourly) in (29, 30, 31)


async def test_a_tick_of_many_late_jobs_lets_the_rest_of_the_process_run_between_them(
    sched: Scheduler, clock: VirtualClock
) -> None:
    jobs = 64
    for i in range(jobs):
        sched.add_job(f"fast-{i:02d}", trigger="* * * * * *", handler=noop, misfire="skip")
    await sched.start()
    await clock.advance(1)
    woke = T0 + timedelta(seconds=1) + HOUR
    seen: list[int] = []  # late jobs already rescheduled, at each turn of the event loop

    async def probe() -> None:
        while not seen or seen[-1] < jobs:
            seen.append(sum(1 for v in sched.jobs() if v.next_run and v.next_run > woke))
            await asyncio.sleep(0)

    watching = asyncio.ensure_future(probe())
    await clock.suspend(HOUR)  # every job wakes an hour late: 3,600 missed fires each
    await asyncio.wait_for(watching, timeout=30)
    assert any(0 < count < jobs for count in seen)


async def test_a_run_all_catch_up_cut_short_by_a_stop_goes_on_after_the_restart(
    make_scheduler: Any, clock: VirtualClock
) -> None:
    # The chain's first claim wrote the newest missed fire as the job's last fire: after a
    # stop (or a crash) in the middle, the restart found nothing missed and the rest of
    # the catch-up was lost without a record.
    ran: list[int] = []
    held = asyncio.Event()

    async def job(ctx: RunContext) -> None:
        minute = int((ctx.scheduled_for - T0).total_seconds() // 60)
        ran.append(minute)
        if minute == 30 and len(ran) < 4:
            await held.wait()  # never set: the first process stops during this run

    first = make_scheduler()
    first.add_job("j", trigger="*/10 * * * *", handler=job, misfire="run_all")
    await first.start()
    await clock.advance(10 * 60)
    await clock.suspend(50 * 60 + 5)  # 00:20 to 01:00 missed
    await clock.advance(0)
    await first.stop(grace_s=0)
    assert ran == [10, 20, 30]
    second = make_scheduler()
    second.add_job("j", trigger="*/10 * * * *", handler=job, misfire="run_all")
    async with second:
        await clock.advance(0)
        await second.drain()
        runs = await all_runs(second, "j")
    assert ran == [10, 20, 30, 40, 50, 60]
    assert statuses(runs) == ["succeeded"] * 2 + ["cancelled"] + ["succeeded"] * 3
