"""Time, injected.

Every component that reads the time or sleeps takes a `Clock`. Production code uses
`SystemClock`; tests use `agentcron.testing.VirtualClock`, whose `advance()` moves time and
wakes sleepers, so schedule, policy and heartbeat tests never sleep for real.

Two clocks are exposed on purpose:

* `now()` is the wall clock (aware UTC). Schedules are defined in wall time.
* `monotonic()` never jumps. Comparing how far each moved between two ticks is how the engine
  detects a suspend/hibernate or an NTP step (the wall clock jumps, the monotonic one does not).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "utc"]

#: Sleeps longer than this are cut into chunks so that a wall-clock jump during the sleep
#: (suspend, NTP step) is noticed within this many seconds.
MAX_SLEEP_CHUNK_S = 1.0
#: A long `asyncio.sleep` overshoots more than a short one: Linux lets `epoll_wait` with a
#: timeout of t seconds end up to t/1000 late (its timer slack for polls, at most 0.1 s), and
#: on an idle machine it does (measured on this project's VMs: `asyncio.sleep` of 20 ms,
#: 0.1 s and 1 s overshot by a median of 0.34, 0.40 and 1.30 ms). So a sleep is aimed that
#: much early, and lands within about the event loop's millisecond of its deadline with one
#: wake-up. One that ends early all the same (another timer's interrupt cut the slack short)
#: sleeps the rest. Earlier versions slept in two stages (a coarse sleep, then a last 20 ms
#: one), which was as precise but woke the process twice per sleep; each wake-up of a
#: sleeping process costs CPU (0.1-0.2 ms on a VM, more than an idle scheduler's whole
#: second of other work).
_SLACK_PER_S = 0.001
_MAX_SLACK_S = 0.1


def utc(dt: datetime) -> datetime:
    """Return `dt` as an aware UTC datetime. ValueError for a naive one, and for one that
    falls outside years 1-9999 once converted (`9999-12-31T23:59:59-12:00`)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} given where an aware one is required")
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{dt.isoformat()} is out of range once converted to UTC (years 1-9999)"
        ) from None


@runtime_checkable
class Clock(Protocol):
    """The only way agentcron reads the time or waits for it."""

    def now(self) -> datetime:
        """The current wall-clock time, aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (not related to the wall clock)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of monotonic time (returns at once for `seconds <= 0`)."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Wait until the wall clock reads `when` (aware) or later.

        Implementations must notice wall-clock jumps within about a second, so a caller
        sleeping until the next fire time wakes up promptly after a resume from suspend.
        """
        ...


class SystemClock:
    """The real clock: `datetime.now(UTC)`, `time.monotonic()` and asyncio sleeps."""

    #: `datetime.now(UTC)` and `time.monotonic()` themselves, not methods calling them:
    #: the engine reads the clock a few times per fire, and a Python frame per read was
    #: a third of its cost.
    now: Callable[[], datetime] = staticmethod(partial(datetime.now, UTC))
    monotonic: Callable[[], float] = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        deadline = time.monotonic() + seconds
        await asyncio.sleep(seconds - min(seconds * _SLACK_PER_S, _MAX_SLACK_S))
        remaining = deadline - time.monotonic()
        while remaining > 0:  # only when woken early
            await asyncio.sleep(remaining)
            remaining = deadline - time.monotonic()

    async def sleep_until(self, when: datetime) -> None:
        target = utc(when)
        while True:
            remaining = (target - self.now()).total_seconds()
            if remaining <= 0:
                return
            if remaining > MAX_SLEEP_CHUNK_S:
                # Only a look at the wall clock: no precise landing needed (one wake-up).
                await asyncio.sleep(MAX_SLEEP_CHUNK_S)
            else:
                await self.sleep(remaining)
