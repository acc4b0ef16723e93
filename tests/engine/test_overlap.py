"""The eight overlap policies of DESIGN 2.3, through the engine, on a virtual clock.

Every job fires every 10 s from T0 (at 10, 20, 30, ...); handlers take a set virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from agentcron.engine import Scheduler
from agentcron.handlers import RunContext
from agentcron.testing import VirtualClock
from agentcron.triggers import Interval

from .conftest import T0, Stubborn, all_runs, statuses


class Work:
    """An async handler taking `duration_s` of virtual time; logs start offsets."""

    def __init__(self, clock: VirtualClock, duration_s: float) -> None:
        self.clock = clock
        self.duration_s = duration_s
        self.started: dict[int, int] = {}  # scheduled offset -> start offset
        self.running = 0
        self.max_running = 0

    async def __call__(self, ctx: RunContext) -> None:
        self.started[offset(ctx.scheduled_for)] = offset(self.clock.now())
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await self.clock.sleep(self.duration_s)
        finally:
            self.running -= 1


def offset(dt: object) -> int:
    return int((dt - T0).total_seconds())  # type: ignore[operator]


async def run_job(
    sched: Scheduler,
    clock: VirtualClock,
    work: Callable[[RunContext], Awaitable[None]],
    overlap: object,
    until_s: float,
) -> list[str]:
    sched.add_job("j", trigger=Interval(seconds=10), handler=work, overlap=overlap)
    await sched.start()
    await clock.advance(until_s)
    runs = await all_runs(sched, "j")
    return [f"{offset(r.scheduled_for)}:{s}" for r, s in zip(runs, statuses(runs), strict=True)]


async def test_skip_drops_fires_while_a_run_is_active(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 25)
    got = await run_job(sched, clock, work, "skip", 36)
    assert got == ["10:succeeded", "20:skipped(overlap)", "30:skipped(overlap)"]


async def test_queue_runs_waiting_fires_in_order_up_to_max_queue(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 23)
    got = await run_job(sched, clock, work, {"policy": "queue", "max_queue": 1}, 57)
    assert got == [
        "10:succeeded",
        "20:succeeded",
        "30:skipped(overlap)",
        "40:running",
        "50:skipped(overlap)",
    ]
    assert work.started == {10: 10, 20: 33, 40: 56}


async def test_buffer_one_keeps_only_the_newest_pending_fire(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 23)
    got = await run_job(sched, clock, work, "buffer_one", 57)
    assert got == [
        "10:succeeded",
        "20:skipped(overlap)",
        "30:succeeded",
        "40:skipped(overlap)",
        "50:running",
    ]
    assert work.started == {10: 10, 30: 33, 50: 56}


async def test_delay_waits_then_runs_if_free_else_skips(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 12)
    got = await run_job(sched, clock, work, {"policy": "delay", "delay": 5}, 53)
    assert got == ["10:succeeded", "20:succeeded", "30:skipped(overlap)", "40:succeeded"]
    assert work.started == {10: 10, 20: 25, 40: 40}


async def test_timeout_cancels_the_hung_run_after_max_skips_and_starts_anew(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 10_000)  # hangs
    got = await run_job(sched, clock, work, {"policy": "timeout", "max_skips": 2}, 41)
    assert got == ["10:cancelled", "20:skipped(overlap)", "30:skipped(overlap)", "40:running"]
    first = (await all_runs(sched, "j"))[0]
    assert first.error is not None and "replaced" in first.error


async def test_replace_cancels_the_active_run_for_the_new_one(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 15)
    got = await run_job(sched, clock, work, "replace", 31)
    assert got == ["10:cancelled", "20:cancelled", "30:running"]
    assert work.running == 1


async def test_replace_abandons_a_run_whose_handler_ignores_cancellation_after_the_grace(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # It waited for the old run for ever: every later fire was lost without a record.
    sched = make_scheduler(stop_grace_s=2)
    stubborn = Stubborn()
    try:
        got = await run_job(sched, clock, stubborn, "replace", 36)
        assert got == ["10:cancelled", "20:cancelled", "30:running"]
        assert [offset(t) for t in stubborn.started] == [10, 20, 30]
        first = (await all_runs(sched, "j"))[0]
        assert first.error is not None and "replaced" in first.error
        assert "ignored cancellation" in first.error
        assert first.finished_at == T0 + timedelta(seconds=22)  # the 2 s grace, then given up
        sched.remove("j")  # its run at 30 is abandoned in turn, 2 s later
        await clock.advance(3)
        async with asyncio.timeout(10):
            await sched.drain()  # the abandoned runs' tasks are not waited for
        assert sched.health()["active_runs"] == 0
    finally:
        stubborn.release()
        await sched.stop(grace_s=0)


async def test_timeout_abandons_a_hung_run_that_ignores_cancellation_after_the_grace(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler(stop_grace_s=2)
    stubborn = Stubborn()
    try:
        policy = {"policy": "timeout", "max_skips": 1}
        got = await run_job(sched, clock, stubborn, policy, 36)
        assert got == ["10:cancelled", "20:skipped(overlap)", "30:running"]
        assert [offset(t) for t in stubborn.started] == [10, 30]
    finally:
        stubborn.release()
        await sched.stop(grace_s=0)


async def test_concurrent_runs_in_parallel_up_to_max_concurrent_then_skips(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 25)
    got = await run_job(sched, clock, work, {"policy": "concurrent", "max_concurrent": 2}, 41)
    assert got == ["10:succeeded", "20:running", "30:skipped(overlap)", "40:running"]
    assert work.max_running == 2


async def test_allow_always_runs_in_parallel(sched: Scheduler, clock: VirtualClock) -> None:
    work = Work(clock, 25)
    got = await run_job(sched, clock, work, "allow", 36)
    assert got == ["10:succeeded", "20:running", "30:running"]
    assert work.max_running == 3


async def test_a_run_waiting_for_a_retry_counts_as_active(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler()
    attempts: list[int] = []

    async def fails_once(ctx: RunContext) -> None:
        attempts.append(offset(clock.now()))
        if ctx.attempt == 1:
            raise RuntimeError("transient")

    sched.add_job(
        "j",
        trigger=Interval(seconds=10),
        handler=fails_once,
        overlap="skip",
        retry={"max_attempts": 2, "strategy": "fixed", "base_delay": 15, "max_delay": 15},
    )
    async with sched:
        await clock.advance(26)
        runs = await all_runs(sched, "j")
    assert [(offset(r.scheduled_for), s) for r, s in zip(runs, statuses(runs), strict=True)] == [
        (10, "succeeded"),
        (20, "skipped(overlap)"),
    ]
    assert runs[0].attempt == 2 and attempts == [10, 25]
    assert timedelta(seconds=15) == runs[0].finished_at - runs[0].started_at  # type: ignore[operator]


async def test_a_delayed_fire_is_skipped_if_the_job_was_paused_meanwhile(
    sched: Scheduler, clock: VirtualClock
) -> None:
    work = Work(clock, 12)
    sched.add_job(
        "j", trigger=Interval(seconds=10), handler=work, overlap={"policy": "delay", "delay": 5}
    )
    async with sched:
        await clock.advance(21)  # 10 runs, 20 waits until 25
        sched.pause("j")
        await clock.advance(10)
        runs = await all_runs(sched, "j")
    assert statuses(runs) == ["succeeded", "skipped(paused)"]
