"""One run: retries (exact delays), retry_on/no_retry_on, timeouts, misbehaving handlers."""

from __future__ import annotations

import asyncio
import sys
import threading
from datetime import timedelta

import pytest

from agentcron.engine import Scheduler
from agentcron.handlers import Command, HandlerOutcome, RunContext, as_handler
from agentcron.models import RunStatus
from agentcron.policies import Retry
from agentcron.testing import VirtualClock
from agentcron.triggers import Date, Interval

from .conftest import T0, EventLog, all_runs, noop, wait_real


class Failing:
    """Fails `failures` times (with `error`), then succeeds; logs attempt start offsets."""

    def __init__(self, clock: VirtualClock, failures: int, error: Exception) -> None:
        self.clock = clock
        self.failures = failures
        self.error = error
        self.starts: list[float] = []

    async def __call__(self, ctx: RunContext) -> str:
        self.starts.append((self.clock.now() - T0).total_seconds())
        if len(self.starts) <= self.failures:
            raise self.error
        return "ok"


ONCE = Date(T0 + timedelta(seconds=1))


async def _tail_job(ctx: RunContext) -> HandlerOutcome:
    return HandlerOutcome(output_tail=f"x{ctx.job_id}" * 10_000)


class _TailJob:
    async def __call__(self, ctx: RunContext) -> HandlerOutcome:
        return await _tail_job(ctx)


async def test_a_run_keeps_the_bounded_output_tail_an_async_function_returns(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # An `async def` function is awaited directly in its run's task (`CallableHandler.
    # direct`), an async callable object through `run()`: both record the same tail.
    assert as_handler(_tail_job).direct is _tail_job
    assert as_handler(_TailJob()).direct is None
    sched.add_job("a", trigger=ONCE, handler=_tail_job)
    sched.add_job("b", trigger=ONCE, handler=_TailJob())
    async with sched:
        await clock.advance(2)
        (a,) = await all_runs(sched, "a")
        (b,) = await all_runs(sched, "b")
    assert a.status == b.status == RunStatus.succeeded
    assert a.output_tail is not None and b.output_tail is not None
    assert len(a.output_tail) == len(b.output_tail) < 20_000
    assert a.output_tail.endswith("xa") and b.output_tail.endswith("xb")


@pytest.mark.parametrize(
    ("retry", "starts"),
    [
        (Retry(max_attempts=4, strategy="fixed", base_delay=5, max_delay=5), [1, 6, 11, 16]),
        (Retry(max_attempts=4, strategy="linear", base_delay=2, max_delay=60), [1, 3, 7, 13]),
        (Retry(max_attempts=4, strategy="exponential", base_delay=1, max_delay=3), [1, 2, 4, 7]),
        (
            Retry(max_attempts=4, strategy="exponential", base_delay=2, multiplier=3, max_delay=99),
            [1, 3, 9, 27],
        ),
    ],
)
async def test_retries_wait_exactly_the_strategys_delays_within_one_run(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog, retry: Retry, starts: list[float]
) -> None:
    handler = Failing(clock, failures=3, error=RuntimeError("flaky"))
    sched.add_job("j", trigger=ONCE, handler=handler, retry=retry)
    async with sched:
        await clock.advance(100)
        runs = await all_runs(sched, "j")
    assert handler.starts == starts
    assert len(runs) == 1
    assert runs[0].status == RunStatus.succeeded and runs[0].attempt == 4
    await sched.events.drain()
    assert [e.attempt for e in event_log.of("run.retrying")] == [1, 2, 3]
    assert event_log.of("run.retrying")[0].error == "RuntimeError: flaky"


async def test_retry_jitter_keeps_each_delay_within_its_bound(
    make_scheduler: object, clock: VirtualClock
) -> None:
    import random

    sched = make_scheduler(rng=random.Random(5))  # type: ignore[operator]
    handler = Failing(clock, failures=5, error=RuntimeError("flaky"))
    sched.add_job(
        "j",
        trigger=ONCE,
        handler=handler,
        retry=Retry(max_attempts=6, strategy="fixed", base_delay=10, max_delay=10, jitter="equal"),
    )
    async with sched:
        await clock.advance(100)
    gaps = [b - a for a, b in zip(handler.starts, handler.starts[1:], strict=False)]
    assert len(gaps) == 5
    assert all(5 <= g <= 10 for g in gaps)
    await sched.stop()


async def test_the_last_failure_is_recorded_with_its_error_after_max_attempts(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    handler = Failing(clock, failures=99, error=ValueError("bad data"))
    sched.add_job(
        "j",
        trigger=ONCE,
        handler=handler,
        retry={"max_attempts": 3, "strategy": "fixed", "base_delay": 1, "max_delay": 1},
    )
    async with sched:
        await clock.advance(10)
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.failed and run.attempt == 3
    assert run.error == "ValueError: bad data"
    assert len(handler.starts) == 3
    await sched.events.drain()
    assert len(event_log.of("run.failed")) == 1


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (TimeoutError("upstream slow"), 3),
        (RuntimeError("HTTP 503"), 3),
        (PermissionError("denied"), 1),
        (RuntimeError("fatal: schema"), 1),
        (KeyError("x"), 1),
    ],
)
async def test_retry_on_and_no_retry_on_decide_which_errors_are_retried(
    sched: Scheduler, clock: VirtualClock, error: Exception, attempts: int
) -> None:
    handler = Failing(clock, failures=99, error=error)
    sched.add_job(
        "j",
        trigger=ONCE,
        handler=handler,
        retry=Retry(
            max_attempts=3,
            strategy="fixed",
            base_delay=1,
            max_delay=1,
            retry_on=(TimeoutError, "503", "Runtime"),
            no_retry_on=(PermissionError, "fatal"),
        ),
    )
    async with sched:
        await clock.advance(10)
    assert len(handler.starts) == attempts


async def test_an_async_handler_is_cancelled_at_its_timeout_and_cleans_up(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    cleaned: list[bool] = []

    async def hangs(ctx: RunContext) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(ctx.cancel_requested)

    sched.add_job("j", trigger=ONCE, handler=hangs, timeout=30)
    async with sched:
        await clock.advance(31)
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.timed_out
    assert run.error == "TimeoutError: timed out after 30s"
    assert run.duration_s == 30
    assert cleaned == [True]
    await sched.events.drain()
    assert event_log.of("run.timed_out")[0].timeout_s == 30


async def test_a_timed_out_attempt_is_retried_by_the_retry_policy(
    sched: Scheduler, clock: VirtualClock
) -> None:
    starts: list[int] = []

    async def slow_then_fast(ctx: RunContext) -> None:
        starts.append(ctx.attempt)
        if ctx.attempt == 1:
            await clock.sleep(100)

    sched.add_job(
        "j",
        trigger=ONCE,
        handler=slow_then_fast,
        timeout=10,
        retry={"max_attempts": 2, "strategy": "fixed", "base_delay": 1, "max_delay": 1},
    )
    async with sched:
        await clock.advance(20)
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.succeeded and run.attempt == 2 and starts == [1, 2]


async def raises_system_exit() -> None:
    raise SystemExit(3)


async def returns_garbage() -> object:
    return object()


async def raises_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


async def test_misbehaving_handlers_never_stop_the_scheduler(
    sched: Scheduler, clock: VirtualClock
) -> None:
    async def raises() -> None:
        raise RuntimeError("boom")

    async def ignores_cancel() -> None:
        # Ignores the engine's cancellation; only the event loop's final one ends it.
        try:
            await clock.sleep(1000)
        except asyncio.CancelledError:
            await asyncio.Event().wait()

    for name, fn in [
        ("raises", raises),
        ("exit", raises_system_exit),
        ("garbage", returns_garbage),
        ("ctrl_c", raises_keyboard_interrupt),
        ("stubborn", ignores_cancel),
        ("healthy", noop),
    ]:
        sched.add_job(name, trigger=ONCE, handler=fn, timeout=5)
    async with sched:
        await clock.advance(60)
        got = {
            name: (await all_runs(sched, name))[0].status
            for name in ("raises", "exit", "garbage", "ctrl_c", "stubborn", "healthy")
        }
        assert sched.health()["status"] == "running"
    assert got == {
        "raises": RunStatus.failed,
        "exit": RunStatus.failed,
        "garbage": RunStatus.succeeded,
        "ctrl_c": RunStatus.failed,
        "stubborn": RunStatus.timed_out,
        "healthy": RunStatus.succeeded,
    }


class Unusual(BaseException):
    """Neither an `Exception` nor one of the three escapes the runner named."""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


async def raises_unusual() -> None:
    raise Unusual("odd")


async def raises_unprintable() -> None:
    raise Unprintable


async def raises_a_huge_message() -> None:
    raise RuntimeError("x" * 3_000_000)


@pytest.mark.parametrize("timeout_s", [None, 5])
async def test_any_exception_a_handler_raises_ends_its_run_failed_and_retried(
    sched: Scheduler, clock: VirtualClock, timeout_s: float | None
) -> None:
    # A BaseException subclass (without a timeout) and an exception whose str() raises
    # escaped the runner: the run stayed `running` until its lease expired, not retried.
    retry = {"max_attempts": 2, "strategy": "fixed", "base_delay": 1, "max_delay": 1}
    handlers = {"unusual": raises_unusual, "unprintable": raises_unprintable,
                "huge": raises_a_huge_message}  # fmt: skip
    for name, fn in handlers.items():
        sched.add_job(name, trigger=ONCE, handler=fn, timeout=timeout_s, retry=retry)
    async with sched:
        await clock.advance(10)
        runs = {name: (await all_runs(sched, name))[0] for name in handlers}
    assert {run.status for run in runs.values()} == {RunStatus.failed}
    assert {run.attempt for run in runs.values()} == {2}
    assert runs["unusual"].error == "HandlerError: handler raised Unusual(odd)"
    assert runs["unprintable"].error == "Unprintable: <str() of the error raised RuntimeError>"
    huge = runs["huge"].error
    assert huge is not None and huge.startswith("RuntimeError: xxx")
    assert len(huge) == 4_000 and huge.endswith("[2,996,045 more characters]")


async def test_the_handler_context_carries_the_occurrence_key_for_every_attempt(
    sched: Scheduler, clock: VirtualClock
) -> None:
    keys: list[str] = []

    async def flaky(ctx: RunContext) -> None:
        keys.append(ctx.occurrence_key)
        if ctx.attempt < 3:
            raise RuntimeError("again")

    sched.add_job("j", trigger=ONCE, handler=flaky, retry=3)
    async with sched:
        await clock.advance(30)
    assert keys == [f"j@{(T0 + timedelta(seconds=1)).isoformat()}"] * 3


async def test_a_sync_handler_in_a_child_process_is_killed_at_its_timeout(
    sched: Scheduler, clock: VirtualClock
) -> None:
    handler = as_handler("engine.engine_samples:sleep_for_a_minute", isolation="process")
    sched.add_job("j", trigger=ONCE, handler=handler, timeout=2)
    async with sched:
        await clock.advance(3)

        async def finished() -> bool:
            return (
                bool(await all_runs(sched, "j")) and (await all_runs(sched, "j"))[0].status.is_final
            )

        done: list[bool] = [False]

        async def poll() -> None:
            while not await finished():
                await asyncio.sleep(0.02)  # a real child process is killed (noqa: sleep-ok)
            done[0] = True

        await asyncio.wait_for(poll(), timeout=20)
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.timed_out


async def test_a_command_is_killed_with_its_process_tree_at_its_timeout(
    sched: Scheduler, clock: VirtualClock, tmp_path: object
) -> None:
    import os
    from pathlib import Path

    pid_file = Path(str(tmp_path)) / "grandchild.pid"
    script = f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"  # the hung or busy work of a child process (noqa: sleep-ok)
    sched.add_job("cmd", trigger=ONCE, handler=Command([sys.executable, "-c", script]), timeout=5)
    async with sched:
        await wait_real(lambda: clock.sleepers > 0)
        await clock.advance(1)
        await wait_real(lambda: pid_file.exists() and pid_file.read_text() != "")
        await clock.advance(5)

        finals: list[RunStatus] = []

        async def poll() -> None:
            while True:
                runs = await all_runs(sched, "cmd")
                if runs and runs[0].status.is_final:
                    finals.append(runs[0].status)
                    return
                await asyncio.sleep(0.02)  # a real process tree is killed (noqa: sleep-ok)

        await asyncio.wait_for(poll(), timeout=30)
    assert finals == [RunStatus.timed_out]
    grandchild = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return True
        return False

    await wait_real(gone)


async def test_a_handler_that_kills_its_own_process_fails_its_run_only(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job(
        "dies", trigger=ONCE, handler="engine.engine_samples:exit_hard", isolation="process"
    )
    sched.add_job("lives", trigger=Interval(seconds=1), handler=noop)
    async with sched:
        await clock.advance(1)
        await asyncio.wait_for(sched.drain(), timeout=30)
        (died,) = await all_runs(sched, "dies")
        await clock.advance(2)
        assert sched.health()["status"] == "running"
        assert len(await all_runs(sched, "lives")) == 3
    assert died.status == RunStatus.failed
    assert died.error and "3" in died.error, died.error


async def test_hung_sync_handlers_given_up_on_leave_threads_for_other_jobs(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # Every timed-out run of `hung` kept one of the loop's 6 default threads (2 CPUs):
    # after six, the sync handlers of every other job waited for a thread, timing out too.
    gate = threading.Event()

    def hung() -> None:
        gate.wait(60)

    def healthy() -> str:
        return "ok"

    sched.add_job("hung", trigger=Interval(seconds=1), handler=hung, timeout=0.5)
    sched.add_job("healthy", trigger="0 0 1 1 *", handler=healthy, timeout=0.5)
    try:
        await sched.start()
        for _ in range(20):
            await clock.advance(1)
        hung_runs = await all_runs(sched, "hung")
        assert [r.status for r in hung_runs[:19]] == [RunStatus.timed_out] * 19
        async with asyncio.timeout(30):  # real seconds: the virtual clock stands still
            run = await sched.run_now("healthy")
        assert run.status == RunStatus.succeeded
    finally:
        gate.set()


# -- progress ---------------------------------------------------------------------------
async def test_progress_reported_by_a_handler_is_kept_with_the_run_and_published(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    async def import_mail(ctx: RunContext) -> None:
        for pct in (10.0, 10.4, 55.0, float("nan"), 250.0):
            ctx.progress(pct)
            await clock.sleep(1)

    sched.add_job("mail", trigger=ONCE, handler=import_mail)
    await sched.start()
    await clock.advance(1)
    assert sched.job("mail").progress == 10.0
    await clock.advance(2)
    assert sched.job("mail").progress == 55.0
    await clock.advance(1)  # NaN is ignored
    assert sched.job("mail").progress == 55.0
    await clock.advance(1)  # clamped to 100
    assert sched.job("mail").to_dict()["progress"] == 100.0
    await clock.advance(1)
    await sched.drain()
    assert sched.job("mail").progress is None  # no run active
    await sched.events.drain()
    # 10.4 moved by less than a whole percent: kept, not published.
    assert [e.progress for e in event_log.of("run.progress")] == [10.0, 55.0, 100.0]
    [started] = event_log.of("run.started")
    assert {e.run_id for e in event_log.of("run.progress")} == {started.run_id}


async def test_progress_reported_from_a_sync_handlers_thread_reaches_the_loop(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    reported = threading.Event()
    release = threading.Event()

    def crunch(ctx: RunContext) -> None:
        ctx.progress(42)
        reported.set()
        release.wait(30)

    sched.add_job("crunch", trigger=ONCE, handler=crunch)
    await sched.start()
    try:
        await clock.advance(1)
        await wait_real(reported.is_set)
        await wait_real(lambda: sched.job("crunch").progress == 42.0)
    finally:
        release.set()
    await wait_real(lambda: sched.job("crunch").active_runs == 0)
    await sched.events.drain()
    assert [e.progress for e in event_log.of("run.progress")] == [42.0]


async def test_progress_reported_from_a_thread_while_the_loop_is_busy_reaches_it_once(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    # Each report from a thread queued its own callback on the loop: a handler reporting
    # each item of a long list flooded the loop with them, and each was published.
    started, go, reported, release = (threading.Event() for _ in range(4))

    def crunch(ctx: RunContext) -> None:
        started.set()
        go.wait(30)
        for pct in range(1, 101):
            ctx.progress(pct)
        reported.set()
        release.wait(30)

    sched.add_job("crunch", trigger=ONCE, handler=crunch)
    await sched.start()
    try:
        await clock.advance(1)
        await wait_real(started.is_set)
        go.set()
        assert reported.wait(30)  # the loop is busy (here) while the thread reports
        await wait_real(lambda: sched.job("crunch").progress == 100.0)
    finally:
        release.set()
    await wait_real(lambda: sched.job("crunch").active_runs == 0)
    await sched.events.drain()
    assert [e.progress for e in event_log.of("run.progress")] == [100.0]


async def test_progress_reported_in_small_steps_is_published_each_whole_percent(
    sched: Scheduler, clock: VirtualClock, event_log: EventLog
) -> None:
    async def import_mail(ctx: RunContext) -> None:
        for step in range(1, 13):  # a quarter of a percent per item
            ctx.progress(step / 4)
        await clock.sleep(1)

    sched.add_job("mail", trigger=ONCE, handler=import_mail)
    await sched.start()
    await clock.advance(1)
    assert sched.job("mail").progress == 3.0
    await clock.advance(1)
    await sched.drain()
    await sched.events.drain()
    # Each report moved it by less than a whole percent, but they add up.
    assert [e.progress for e in event_log.of("run.progress")] == [0.25, 1.25, 2.25]
