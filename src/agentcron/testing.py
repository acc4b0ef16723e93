"""Test helpers that ship with agentcron: a virtual clock (and, later, in-memory backends).

`VirtualClock` lets schedule, policy and heartbeat tests run without sleeping::

    clock = VirtualClock(datetime(2026, 3, 8, 6, 0, tzinfo=UTC))
    task = asyncio.create_task(clock.sleep(10))
    await clock.advance(10)     # the sleeper wakes; no real time passes
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agentcron.clock import utc

__all__ = ["VirtualClock"]

_SETTLE_ROUNDS = 20


@dataclass(order=True)
class _Sleeper:
    # Ordered by the wall-clock deadline expressed in monotonic seconds at registration.
    key: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    wall_deadline: datetime | None = field(compare=False, default=None)
    mono_deadline: float | None = field(compare=False, default=None)


class VirtualClock:
    """A clock that only moves when told to.

    * `advance(seconds)` moves the wall and monotonic clocks together, waking every sleeper
      whose deadline is reached, in deadline order, and lets woken tasks run before moving on
      (so a loop that sleeps again after waking is woken again within the same advance).
    * `suspend(seconds)` moves only the wall clock, as a laptop sleep or hibernate does on
      Linux (CLOCK_MONOTONIC stops while suspended).
    * `step_wall(delta)` moves only the wall clock by `delta` (negative = backwards), as an
      NTP step does.
    """

    def __init__(self, start: datetime | None = None, *, monotonic_start: float = 1000.0) -> None:
        self._wall = utc(start) if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = monotonic_start
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()

    # -- reading -----------------------------------------------------------------------
    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    # -- sleeping ----------------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._wait(mono_deadline=self._mono + seconds)

    async def sleep_until(self, when: datetime) -> None:
        target = utc(when)
        if target <= self._wall:
            await asyncio.sleep(0)
            return
        await self._wait(wall_deadline=target)

    async def _wait(
        self, *, mono_deadline: float | None = None, wall_deadline: datetime | None = None
    ) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sleeper = _Sleeper(
            key=self._key(mono_deadline, wall_deadline),
            seq=next(self._seq),
            future=future,
            wall_deadline=wall_deadline,
            mono_deadline=mono_deadline,
        )
        heapq.heappush(self._sleepers, sleeper)
        await future

    def _key(self, mono_deadline: float | None, wall_deadline: datetime | None) -> float:
        if mono_deadline is not None:
            return mono_deadline
        assert wall_deadline is not None
        return self._mono + (wall_deadline - self._wall).total_seconds()

    def _due(self, sleeper: _Sleeper) -> bool:
        if sleeper.mono_deadline is not None:
            return sleeper.mono_deadline <= self._mono
        assert sleeper.wall_deadline is not None
        return sleeper.wall_deadline <= self._wall

    @property
    def sleepers(self) -> int:
        """How many tasks are currently waiting on this clock."""
        return sum(1 for s in self._sleepers if not s.future.done())

    def next_deadline(self) -> float | None:
        """Seconds until the earliest sleeper wakes, or None when nobody sleeps."""
        self._rekey()
        live = [s for s in self._sleepers if not s.future.done()]
        if not live:
            return None
        return max(0.0, min(s.key for s in live) - self._mono)

    # -- moving time -------------------------------------------------------------------
    async def advance(self, seconds: float | timedelta) -> None:
        """Move both clocks forward, waking sleepers in deadline order."""
        delta = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if delta < 0:
            raise ValueError("VirtualClock.advance() cannot go backwards; use step_wall()")
        end_mono = self._mono + delta
        await self.settle()
        while True:
            self._rekey()
            live = [s for s in self._sleepers if not s.future.done()]
            next_key = min((s.key for s in live), default=None)
            if next_key is None or next_key > end_mono:
                break
            self._move_to(max(next_key, self._mono))
            self._wake_due(up_to_key=next_key)
            await self.settle()
        self._move_to(end_mono)
        self._wake_due()
        await self.settle()

    async def suspend(self, seconds: float | timedelta) -> None:
        """Move only the wall clock forward (the machine slept); wakes wall-time sleepers."""
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        self._wall += delta
        self._wake_due()
        await self.settle()

    def block(self, seconds: float) -> None:
        """Move both clocks forward without letting anything else run: what code that blocks
        the event loop for `seconds` does. Sleepers whose deadline passed are woken, and run
        once the caller lets the loop run again (an `await`)."""
        if seconds < 0:
            raise ValueError("VirtualClock.block() cannot go backwards; use step_wall()")
        self._move_to(self._mono + seconds)
        self._wake_due()

    async def step_wall(self, delta: timedelta) -> None:
        """Move only the wall clock by `delta`, forwards or backwards (an NTP step)."""
        self._wall += delta
        self._wake_due()
        await self.settle()

    async def settle(self) -> None:
        """Let woken tasks run until they block again (a bounded number of loop turns)."""
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

    def _move_to(self, mono: float) -> None:
        step = mono - self._mono
        if step > 0:
            self._mono = mono
            self._wall += timedelta(seconds=step)

    def _rekey(self) -> None:
        for sleeper in self._sleepers:
            if sleeper.wall_deadline is not None:
                sleeper.key = self._key(None, sleeper.wall_deadline)
        self._sleepers = [s for s in self._sleepers if not s.future.done()]
        heapq.heapify(self._sleepers)

    def _wake_due(self, up_to_key: float | None = None) -> None:
        for sleeper in self._sleepers:
            if sleeper.future.done():
                continue
            if self._due(sleeper) or (up_to_key is not None and sleeper.key <= up_to_key):
                # Float rounding must not leave a sleeper a microsecond short forever.
                if sleeper.wall_deadline is not None and self._wall < sleeper.wall_deadline:
                    self._wall = sleeper.wall_deadline
                sleeper.future.set_result(None)
        self._sleepers = [s for s in self._sleepers if not s.future.done()]
        heapq.heapify(self._sleepers)
