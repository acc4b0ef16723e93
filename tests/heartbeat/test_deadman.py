from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from agentcron.events import EventBus, RunSucceeded
from agentcron.heartbeat.deadman import (
    DeadMansSwitch,
    Expectation,
    check_interval,
    expected_by,
    is_overdue,
)
from agentcron.models import RunRecord, RunStatus
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

from .conftest import T0, Collector


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def next_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def test_a_duration_expectation_is_due_every_plus_grace_after_the_last_success() -> None:
    assert expected_by(at(100), T0, every_s=60, grace_s=10) == at(170)
    assert expected_by(None, T0, every_s=60) == at(60)  # counted from when watching began


def test_a_schedule_expectation_is_due_at_the_fire_after_the_last_success_plus_grace() -> None:
    assert expected_by(at(5), T0, next_fire=next_minute, grace_s=30) == at(90)
    assert expected_by(at(5), T0, next_fire=lambda _: None) is None


def test_overdue_starts_at_the_due_time() -> None:
    assert not is_overdue(at(59.999), at(59.998))
    assert is_overdue(at(60), at(60))
    assert not is_overdue(None, at(1e9))


def test_an_expectation_needs_exactly_one_of_duration_and_schedule() -> None:
    with pytest.raises(ValueError, match="'j'"):
        Expectation(job_id="j")
    with pytest.raises(ValueError, match="'j'"):
        Expectation(job_id="j", every_s=60, next_fire=next_minute)
    with pytest.raises(ValueError, match="positive"):
        Expectation(job_id="j", every_s=0)


def succeeded(job_id: str, when: datetime) -> RunRecord:
    return RunRecord(
        run_id=f"{job_id}-{when.timestamp()}",
        job_id=job_id,
        scheduled_for=when,
        status=RunStatus.succeeded,
        started_at=when,
        finished_at=when,
    )


async def test_a_silent_job_is_overdue_once_per_incident_and_recovers_on_success(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    switch = DeadMansSwitch(
        store, clock, bus, [Expectation(job_id="backup", every_s=60, grace_s=10)]
    )
    async with switch:
        await clock.advance(69)
        assert await collector.take() == []
        await clock.advance(1)  # 70 s: the check every 10 s lands on the due time
        assert await collector.take() == ["job.overdue"]
        assert switch.overdue_jobs() == ("backup",)
        await clock.advance(600)
        assert await collector.take() == []  # once per incident

        bus.publish(RunSucceeded(at=clock.now(), job_id="backup", run_id="r", scheduled_for=T0))
        assert await collector.take() == ["run.succeeded", "job.recovered"]
        assert switch.overdue_jobs() == ()


async def test_successes_recorded_by_other_nodes_are_read_from_the_store(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    expectation = Expectation(job_id="sync", next_fire=next_minute, grace_s=30)
    switch = DeadMansSwitch(store, clock, bus, [expectation])
    await store.record_run(succeeded("sync", at(59)))
    await clock.advance(89)  # the fire at 60 s has until 90 s to succeed
    assert await switch.check() == ()
    await clock.advance(1)
    assert await switch.check() == ("sync",)
    assert await collector.types() == ["job.overdue"]
    overdue = [e for e in collector.events if e.type == "job.overdue"]
    assert overdue[0].to_dict()["last_success"] == at(59).isoformat()
    assert overdue[0].to_dict()["expected_by"] == at(90).isoformat()
    await store.record_run(succeeded("sync", at(91)))
    await clock.advance(2)
    assert await switch.check() == ()
    assert await collector.types() == ["job.overdue", "job.recovered"]
    assert await store.get_state("deadman.overdue") == "[]"


async def test_an_open_incident_is_not_announced_again_after_a_restart(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    expectation = Expectation(job_id="report", every_s=30)
    await DeadMansSwitch(store, clock, bus, [expectation]).check(at(30))
    assert await collector.take() == ["job.overdue"]
    restarted = DeadMansSwitch(store, clock, bus, [expectation])
    assert await restarted.check(at(90)) == ("report",)
    assert await collector.take() == []


def test_time_asleep_after_the_last_success_moves_the_due_time() -> None:
    assert expected_by(at(100), T0, every_s=60, grace_s=10, asleep_s=3600) == at(3770)
    assert expected_by(at(5), T0, next_fire=next_minute, grace_s=30, asleep_s=60) == at(150)


async def test_a_job_is_not_overdue_on_waking_from_a_night_of_suspend(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    switch = DeadMansSwitch(store, clock, bus, [Expectation(job_id="digest", every_s=3600)])
    await store.record_run(succeeded("digest", T0))
    async with switch:
        await clock.advance(600)  # awake 10 minutes after its last success
        await clock.suspend(timedelta(hours=8))  # the laptop sleeps through the night
        await clock.advance(10)  # the first check after waking
        assert await collector.take() == []
        assert switch.overdue_jobs() == ()
        await clock.advance(2980)  # 3,590 s of the hour awake
        assert switch.overdue_jobs() == ()
        await clock.advance(20)  # an hour awake without a success: overdue now
        assert await collector.take() == ["job.overdue"]


async def test_a_success_after_waking_starts_a_fresh_hour_without_the_suspend(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    switch = DeadMansSwitch(store, clock, bus, [Expectation(job_id="digest", every_s=3600)])
    await store.record_run(succeeded("digest", T0))
    async with switch:
        await clock.advance(600)
        await clock.suspend(timedelta(hours=8))
        await clock.advance(10)
        woke = clock.now()
        await store.record_run(succeeded("digest", woke))  # the misfire policy's run
        await clock.advance(3590)
        assert switch.overdue_jobs() == ()
        await clock.advance(20)  # an hour after that success: the suspend no longer counts
        assert await collector.take() == ["job.overdue"]
        assert switch.due("digest") == woke + timedelta(hours=1)


async def test_a_success_just_before_the_machine_sleeps_does_not_make_the_job_overdue_on_waking(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    switch = DeadMansSwitch(store, clock, bus, [Expectation(job_id="sync", every_s=60)])
    async with switch:
        await clock.advance(50)  # checked at 50 s
        await clock.advance(5)
        await store.record_run(succeeded("sync", clock.now()))  # after that check
        await clock.suspend(timedelta(hours=8))  # the lid closes 5 s after the success
        await clock.advance(10)  # the first check after waking
        assert await collector.take() == []
        assert switch.overdue_jobs() == ()
        await clock.advance(60)  # a minute awake without a success: overdue now
        assert await collector.take() == ["job.overdue"]


def test_checks_come_at_a_quarter_of_the_shortest_expectation_between_1_and_10_s() -> None:
    hourly = Expectation(job_id="h", every_s=3600)
    assert check_interval([], 10) == 10
    assert check_interval([hourly], 10) == 10
    assert check_interval([hourly, Expectation(job_id="t", every_s=10)], 10) == 2.5
    assert check_interval([Expectation(job_id="s", every_s=2)], 10) == 1  # the floor
    per_schedule = Expectation(job_id="p", next_fire=next_minute, grace_s=20)
    assert check_interval([per_schedule], 10) == 5  # its grace is the span that counts
    assert check_interval([Expectation(job_id="p0", next_fire=next_minute)], 10) == 10


async def _first_overdue_at(clock: VirtualClock, collector: Collector, until_s: float) -> float:
    """Advance in 0.25 s steps; the offset from T0 of the first `job.overdue`."""
    while (clock.now() - T0).total_seconds() < until_s:
        await clock.advance(0.25)
        if "job.overdue" in await collector.take():
            return (clock.now() - T0).total_seconds()
    raise AssertionError(f"no job.overdue by {until_s} s")


async def test_a_job_expected_every_6_s_is_noticed_when_due_not_at_the_next_10_s_check(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    switch = DeadMansSwitch(store, clock, bus, [Expectation(job_id="fast", every_s=6)])
    async with switch:
        assert await _first_overdue_at(clock, collector, 30) <= 6 + 1.5


async def test_a_short_expectation_added_while_running_shortens_the_wait_at_once(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    switch = DeadMansSwitch(store, clock, bus, [Expectation(job_id="slow", every_s=3600)])
    async with switch:
        await clock.advance(3)  # mid-way through a 10 s wait
        switch.watch(Expectation(job_id="fast", every_s=10))  # due at 13 s
        assert await _first_overdue_at(clock, collector, 40) <= 13 + 2.5
        switch.unwatch("fast")
        assert switch.check_interval_s() == 10
