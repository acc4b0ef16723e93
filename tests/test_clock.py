"""The injected clocks: `SystemClock` (briefly, bounded real waits) and `VirtualClock`."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agentcron.clock import Clock, SystemClock, utc
from agentcron.testing import VirtualClock

T0 = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)


def test_utc_converts_aware_datetimes_and_rejects_naive_ones() -> None:
    plus_two = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc(plus_two) == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert utc(plus_two).tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2026, 1, 1))


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+05:00"])
def test_utc_names_a_time_that_falls_outside_years_1_to_9999(text: str) -> None:
    expected = f"{text} is out of range once converted to UTC (years 1-9999)"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        utc(datetime.fromisoformat(text))


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(VirtualClock(), Clock)


def test_the_system_clock_reads_aware_utc_and_a_monotonic_counter() -> None:
    clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is UTC
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5
    assert clock.monotonic() <= clock.monotonic()


async def test_the_system_clock_sleeps_at_least_the_asked_time() -> None:
    clock = SystemClock()
    start = time.monotonic()
    await clock.sleep(0.03)
    assert time.monotonic() - start >= 0.03
    await clock.sleep(0)
    await clock.sleep_until(clock.now() - timedelta(seconds=1))  # past: returns at once


class _TimerCountingLoop(asyncio.SelectorEventLoop):
    """An event loop that records the timers it is asked for (seconds from the request
    to the deadline): each is a wake-up."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
        self.delays.append(when - self.time())
        return super().call_at(when, callback, *args, context=context)


def timers_for(sleep: Coroutine[Any, Any, None]) -> list[float]:
    """The delays of the timers `sleep` asks for, in order."""
    loop = _TimerCountingLoop()
    try:
        loop.run_until_complete(sleep)
    finally:
        loop.close()
    return loop.delays


def test_a_system_clock_sleep_is_one_timer_aimed_early_by_the_kernels_timer_slack() -> None:
    """Linux ends a poll of t seconds up to t/1000 late, so the one timer is aimed that much
    early; it wakes the process once (a second, short timer only if it ended early). Two
    stages, a coarse sleep and then a last 20 ms one, woke an idle scheduler twice per
    fire, a wake-up costing more CPU than the rest of its second."""
    delays = timers_for(SystemClock().sleep(0.5))
    assert 0.485 < delays[0] < 0.4995 + 1e-6  # 0.5 s less 0.5 ms of slack, less the time to ask
    assert len(delays) <= 2
    assert len(timers_for(SystemClock().sleep(0.01))) <= 2


def test_a_long_system_clock_sleep_until_wakes_once_a_second_and_at_the_end() -> None:
    """Chunks of `MAX_SLEEP_CHUNK_S` notice a wall-clock jump; only the last lands precisely."""
    clock = SystemClock()
    delays = timers_for(clock.sleep_until(clock.now() + timedelta(seconds=1.3)))
    assert delays[0] == pytest.approx(1.0, abs=0.01)
    assert len(delays) <= 3


def test_a_virtual_clock_only_moves_when_told() -> None:
    clock = VirtualClock(T0, monotonic_start=50.0)
    assert clock.now() == T0 and clock.monotonic() == 50.0


async def test_advance_wakes_sleepers_in_deadline_order() -> None:
    clock = VirtualClock(T0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{(clock.now() - T0).total_seconds():g}")

    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("c", 30), ("a", 10), ("b", 20))]
    await clock.settle()
    assert clock.sleepers == 3
    assert clock.next_deadline() == 10
    await clock.advance(25)
    assert woke == ["a@10", "b@20"]
    await clock.advance(timedelta(seconds=5))
    assert woke == ["a@10", "b@20", "c@30"]
    await asyncio.gather(*tasks)
    assert clock.sleepers == 0 and clock.next_deadline() is None


async def test_a_loop_that_sleeps_again_is_woken_again_within_one_advance() -> None:
    clock = VirtualClock(T0)
    ticks: list[float] = []

    async def loop() -> None:
        while True:
            await clock.sleep(10)
            ticks.append((clock.now() - T0).total_seconds())

    task = asyncio.ensure_future(loop())
    await clock.settle()
    await clock.advance(35)
    assert ticks == [10, 20, 30]
    task.cancel()


async def test_sleep_until_waits_for_the_wall_clock() -> None:
    clock = VirtualClock(T0)
    done = asyncio.ensure_future(clock.sleep_until(T0 + timedelta(minutes=1)))
    await clock.advance(59)
    assert not done.done()
    await clock.advance(1)
    assert done.done()


async def test_suspend_moves_only_the_wall_clock_and_wakes_wall_sleepers() -> None:
    clock = VirtualClock(T0, monotonic_start=100.0)
    wall = asyncio.ensure_future(clock.sleep_until(T0 + timedelta(hours=1)))
    mono = asyncio.ensure_future(clock.sleep(3600))
    await clock.settle()
    await clock.suspend(timedelta(hours=8))
    assert clock.now() == T0 + timedelta(hours=8)
    assert clock.monotonic() == 100.0
    assert wall.done() and not mono.done()
    mono.cancel()


async def test_step_wall_moves_the_wall_clock_backwards_like_an_ntp_step() -> None:
    clock = VirtualClock(T0)
    await clock.step_wall(timedelta(minutes=-5))
    assert clock.now() == T0 - timedelta(minutes=5)
    assert clock.monotonic() == 1000.0


async def test_block_moves_both_clocks_but_sleepers_run_only_once_the_loop_does() -> None:
    clock = VirtualClock(T0, monotonic_start=100.0)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(1)
        woke.append(clock.monotonic())

    task = asyncio.ensure_future(sleeper())
    await clock.settle()
    clock.block(2.5)  # as code that holds the loop for 2.5 s
    assert clock.monotonic() == 102.5 and clock.now() == T0 + timedelta(seconds=2.5)
    assert woke == []
    await task
    assert woke == [102.5]
    with pytest.raises(ValueError, match="backwards"):
        clock.block(-1)


async def test_advance_cannot_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        await VirtualClock(T0).advance(-1)


async def test_non_positive_sleeps_return_at_once() -> None:
    clock = VirtualClock(T0)
    await clock.sleep(0)
    await clock.sleep_until(T0)
    assert clock.now() == T0
