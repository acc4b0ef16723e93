"""Concurrency groups (AGENT_LOOP_CONCURRENCY), the per-tick hook the systemd watchdog
relies on, and extra health facts; on a virtual clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agentcron.engine import Scheduler
from agentcron.jobs import JobConfigError
from agentcron.testing import VirtualClock
from agentcron.triggers import Interval

from .conftest import all_runs, statuses
from .test_overlap import Work


async def test_a_concurrency_group_runs_at_most_its_limit_and_skips_the_rest(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler(concurrency_limits={"loops": 2})
    work = Work(clock, 5)
    for name in ("a", "b", "c"):
        sched.add_job(name, trigger=Interval(seconds=10), handler=work, concurrency_group="loops")
    sched.add_job("free", trigger=Interval(seconds=10), handler=work)
    await sched.start()
    try:
        await clock.advance(16)
        results = {name: statuses(await all_runs(sched, name)) for name in ("a", "b", "c", "free")}
    finally:
        await sched.stop(grace_s=0)
    assert sorted(results[n][0] for n in ("a", "b", "c")) == [
        "skipped(concurrency)",
        "succeeded",
        "succeeded",
    ]
    assert results["free"] == ["succeeded"]
    assert work.max_running == 3  # two of the group plus the free job


async def test_a_group_slot_is_free_again_once_a_run_ends(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler(concurrency_limits={"loops": 1})
    work = Work(clock, 3)
    sched.add_job("a", trigger=Interval(seconds=10), handler=work, concurrency_group="loops")
    await sched.start()
    try:
        await clock.advance(36)
        assert statuses(await all_runs(sched, "a")) == ["succeeded"] * 3
    finally:
        await sched.stop(grace_s=0)


def test_bad_concurrency_settings_are_refused_naming_the_field(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    with pytest.raises(JobConfigError, match="concurrency_limits"):
        make_scheduler(concurrency_limits={"loops": 0})
    sched = make_scheduler()
    with pytest.raises(JobConfigError, match="concurrency_group"):
        sched.add_job("x", trigger=Interval(seconds=1), handler="os:getcwd", concurrency_group="")


async def test_the_loop_ticks_at_least_every_max_idle_s_and_calls_on_tick(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler()
    ticks: list[float] = []
    sched.on_tick = lambda: ticks.append(clock.monotonic())
    sched.max_idle_s = 5.0
    sched.add_job("daily", trigger="0 0 * * *", handler=Work(clock, 0))
    await sched.start()
    try:
        before = len(ticks)
        await clock.advance(60)
        assert len(ticks) - before >= 12  # nothing was due, yet the loop made progress
    finally:
        await sched.stop(grace_s=0)


async def test_the_loop_turns_once_per_fire_of_an_every_second_job(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    """On an idle machine each turn of the loop runs its code cold: a tick that woke the
    loop again for the next fires it had just queued itself cost an idle scheduler a
    third of its CPU."""
    sched = make_scheduler()
    ticks: list[float] = []
    sched.on_tick = lambda: ticks.append(clock.monotonic())
    work = Work(clock, 0)
    sched.add_job("every-second", trigger="* * * * * *", handler=work)
    await sched.start()
    try:
        await clock.advance(1)
        before = len(ticks)
        for _ in range(10):
            await clock.advance(1)
        assert len(ticks) - before == 10
        assert len(work.started) == 11  # each second's fire ran
    finally:
        await sched.stop(grace_s=0)


async def test_health_includes_the_extra_facts_it_is_given(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    sched = make_scheduler()
    sched.health_extra = lambda: {"status": "degraded", "reasons": ["memory"]}
    assert sched.health()["node"] == {"status": "degraded", "reasons": ["memory"]}


async def test_a_bad_history_limit_is_refused_instead_of_returning_nothing(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    sched = make_scheduler()
    for bad in (0, -1, True, 2.5):
        with pytest.raises(JobConfigError, match="limit"):
            await sched.runs("any", limit=bad)  # type: ignore[arg-type]
