"""`SyncThreads`: sync handlers given up on (a thread cannot be stopped) cannot take the
threads every other sync handler needs."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
from handler_helpers import make_context

from agentcron.handlers import as_handler
from agentcron.handlers.threads import SYNC_THREADS, DaemonThreadPool, SyncThreads

WAIT_S = 30.0  # only a bound against a broken test: every wait below ends by an event


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Hung calls wait on it; it opens after the test so that their threads end."""
    event = threading.Event()
    yield event
    event.set()


async def hang_then_give_up(threads: SyncThreads, gate: threading.Event) -> None:
    """Start a call that blocks its thread, wait until it runs, then stop waiting for it."""
    started = threading.Event()

    def hung() -> None:
        started.set()
        gate.wait(WAIT_S)

    call = asyncio.ensure_future(threads.run(hung))
    await asyncio.to_thread(started.wait, WAIT_S)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_calls_given_up_on_leave_threads_for_the_next_calls(gate: threading.Event) -> None:
    # With one shared pool of 4 threads, 4 hung calls left a 5th call waiting for good.
    threads = SyncThreads(max_workers=4)
    try:
        for _ in range(4):
            await hang_then_give_up(threads, gate)
        assert threads.replaced == 2  # a new pool each time half of one was held
        async with asyncio.timeout(WAIT_S):
            assert await threads.run(lambda: "healthy") == "healthy"
    finally:
        threads.shutdown()


async def test_a_call_given_up_on_that_returns_gives_its_thread_back(
    gate: threading.Event,
) -> None:
    threads = SyncThreads(max_workers=4)
    try:
        await hang_then_give_up(threads, gate)
        assert threads.held == 1
        gate.set()
        async with asyncio.timeout(WAIT_S):
            while threads.held:  # the thread returns when it sees the gate open
                await asyncio.sleep(0.01)  # a real thread, not time (noqa: sleep-ok)
        gate.clear()
        await hang_then_give_up(threads, gate)
        assert threads.replaced == 0  # 1 of 4 held at a time: the pool was never replaced
    finally:
        gate.set()
        threads.shutdown()


async def test_a_call_runs_in_a_copy_of_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    var.set("caller")
    threads = SyncThreads(max_workers=2)
    try:
        assert await threads.run(var.get) == "caller"
    finally:
        threads.shutdown()


async def test_sync_handlers_run_in_the_agentcron_threads() -> None:
    names: list[str] = []

    def job() -> None:
        names.append(threading.current_thread().name)

    await as_handler(job).run(make_context())
    assert names[0].startswith("agentcron-sync")
    assert SYNC_THREADS.max_workers >= 2


def test_a_pool_of_fewer_than_two_threads_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 threads"):
        SyncThreads(max_workers=1)


def test_a_program_whose_sync_handler_hangs_still_exits_once_it_gave_up_on_it() -> None:
    # With `ThreadPoolExecutor` threads the interpreter waited for the hung one at exit:
    # `agentcron run` never ended after SIGTERM, though its scheduler had stopped.
    script = textwrap.dedent(
        """
        import asyncio, threading
        from agentcron.handlers.threads import SYNC_THREADS

        async def main():
            started = threading.Event()

            def hung():
                started.set()
                threading.Event().wait()  # for good

            call = asyncio.ensure_future(SYNC_THREADS.run(hung))
            await asyncio.to_thread(started.wait)
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                print("given up")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT_S
    )
    assert (done.returncode, done.stdout.strip()) == (0, "given up"), done.stderr


def test_a_daemon_pool_runs_calls_in_order_and_hands_back_results_and_errors() -> None:
    pool = DaemonThreadPool(2, thread_name_prefix="test-pool")
    try:
        ok = pool.submit(lambda: threading.current_thread().name)
        bad = pool.submit(lambda: 1 / 0)
        assert ok.result(WAIT_S).startswith("test-pool_")
        with pytest.raises(ZeroDivisionError):
            bad.result(WAIT_S)
    finally:
        pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: None)
