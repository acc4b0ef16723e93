"""Custom retry delays: each job waits by its own `delay_fn` (exact, on the virtual clock),
and `update` replaces the function, in the job and in its stored definition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from agentcron.engine import Scheduler
from agentcron.handlers import RunContext
from agentcron.policies import Retry
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import Date

from .conftest import T0


def squares(attempt: int) -> float:
    return float(attempt * attempt)


def huge(attempt: int) -> float:
    return 40.0


class AlwaysFailing:
    """Fails every attempt; logs each attempt's start offset from T0 in seconds."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.starts: list[float] = []

    async def __call__(self, ctx: RunContext) -> None:
        self.starts.append((self.clock.now() - T0).total_seconds())
        raise RuntimeError("flaky")


ONCE = Date(T0 + timedelta(seconds=1))


def custom(delay_fn: Callable[[int], float]) -> Retry:
    return Retry(max_attempts=4, strategy="custom", delay_fn=delay_fn, max_delay=50)


async def test_two_jobs_with_different_delay_functions_each_wait_by_their_own(
    sched: Scheduler, clock: VirtualClock
) -> None:
    fast_handler, slow_handler = AlwaysFailing(clock), AlwaysFailing(clock)
    fast = sched.add_job("fast", trigger=ONCE, handler=fast_handler, retry=custom(squares))
    slow = sched.add_job("slow", trigger=ONCE, handler=slow_handler, retry=custom(huge))
    assert fast.retry.delay_fn is squares
    assert slow.retry.delay_fn is huge
    async with sched:
        await clock.advance(200)
        await sched.drain()
    assert fast_handler.starts == [1, 2, 6, 15]  # waits of 1, 4, 9 seconds
    assert slow_handler.starts == [1, 41, 81, 121]  # waits of 40 seconds


async def test_update_replaces_the_delay_function_in_the_job_and_its_stored_definition(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    handler = AlwaysFailing(clock)
    sched.add_job("j", trigger=ONCE, handler=handler, retry=custom(squares))
    updated = sched.update("j", retry=custom(huge))
    assert updated.retry.delay_fn is huge
    assert sched.job("j").job.retry.delay_fn is huge
    async with sched:
        await sched.flush()
        stored = await store.get_job("j")
        assert stored is not None
        assert stored.definition["retry"]["delay_fn"] == f"{__name__}:huge"
        await clock.advance(200)
        await sched.drain()
    assert handler.starts == [1, 41, 81, 121]
