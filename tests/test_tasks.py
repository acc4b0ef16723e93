"""`agentcron.tasks`: side-task shutdown and many store calls at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from agentcron.tasks import (
    cancel_and_join,
    cancel_and_wait,
    cancel_and_wait_all,
    join,
    keep_cancellation,
    map_in_chunks,
)


class InFlight:
    """An async call that counts how many of its calls are running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def __call__(self, item: int) -> int:
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(0)  # one loop turn, as a store round trip
        self.now -= 1
        if item == 13:
            raise ValueError("unlucky")
        return item * 2


async def test_results_come_back_in_order_with_at_most_one_chunk_in_flight() -> None:
    call = InFlight()
    assert await map_in_chunks(call, list(range(12)), chunk=5) == [i * 2 for i in range(12)]
    assert call.most == 5


async def test_no_items_make_no_calls() -> None:
    call = InFlight()
    assert await map_in_chunks(call, []) == []
    assert call.most == 0


async def test_the_first_failure_propagates_after_its_chunk() -> None:
    call = InFlight()
    with pytest.raises(ValueError, match="unlucky"):
        await map_in_chunks(call, list(range(20)), chunk=10)
    assert call.now == 0  # every call of the failing chunk finished


@pytest.mark.parametrize("wait", [cancel_and_wait, cancel_and_join])
async def test_a_cancellation_of_the_caller_while_a_task_unwinds_is_not_swallowed(
    wait: Callable[[asyncio.Task[None]], Awaitable[None]],
) -> None:
    # `with suppress(CancelledError): await task` took the caller's own cancellation for
    # the task's: a queue worker's loop, cancelled at that moment, ran on for ever.
    release = asyncio.Event()

    async def slow_to_unwind() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    inner = asyncio.create_task(slow_to_unwind())
    await asyncio.sleep(0)
    went_on = False

    async def caller() -> None:
        nonlocal went_on
        await wait(inner)
        went_on = True

    outer = asyncio.create_task(caller())
    await asyncio.sleep(0)  # the caller waits for `inner` to unwind
    outer.cancel()
    release.set()
    await asyncio.gather(outer, return_exceptions=True)
    assert outer.cancelled() and not went_on
    assert inner.done()


async def fails_on_cancel() -> None:
    """Waits for ever; fails with RuntimeError when cancelled."""
    try:
        await asyncio.Event().wait()
    finally:
        raise RuntimeError("while unwinding")


async def test_cancel_and_wait_all_retrieves_the_tasks_errors_and_returns() -> None:
    tasks = [asyncio.create_task(fails_on_cancel()) for _ in range(2)]
    await asyncio.sleep(0)
    await cancel_and_wait_all(tasks)
    assert all(t.done() and isinstance(t.exception(), RuntimeError) for t in tasks)


async def test_cancel_and_join_raises_the_error_a_task_unwound_with_but_not_its_cancel() -> None:
    failing = asyncio.create_task(fails_on_cancel())
    quiet = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="while unwinding"):
        await cancel_and_join(failing)
    await cancel_and_join(quiet)
    await cancel_and_join(None)
    assert quiet.cancelled()


async def test_join_waits_for_a_task_that_ends_by_itself_and_propagates_a_cancel_of_the_caller() -> (
    None
):
    # As `Dashboard.stop()` waits for the server to answer the requests in progress: a
    # cancellation of the waiting task (a second Ctrl+C) must not be taken for the server's.
    finish = asyncio.Event()

    async def serving() -> str:
        await finish.wait()
        return "done"

    server = asyncio.create_task(serving())
    waiter = asyncio.create_task(join(server))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled() and not server.done()
    finish.set()
    await join(server)
    assert server.result() == "done"


async def swallowing_call(started: asyncio.Event) -> str:
    """A library call that loses a cancellation, as `asyncio.wait_for` on Python 3.11 does
    when the cancellation arrives as its inner call completes."""
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        return "reply"
    raise AssertionError("unreachable")


async def test_a_cancellation_a_library_call_swallowed_is_raised_when_the_call_returns() -> None:
    started = asyncio.Event()
    went_on = False

    async def side_loop() -> None:
        nonlocal went_on
        with keep_cancellation():
            await swallowing_call(started)
        went_on = True

    task = asyncio.create_task(side_loop())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and not went_on


async def test_a_timeout_inside_the_block_stays_a_timeout_and_an_uncancelled_call_returns() -> None:
    async def reads() -> str:
        with keep_cancellation():
            try:
                async with asyncio.timeout(0):  # redis-py polls a socket this way
                    await asyncio.Event().wait()
            except TimeoutError:
                pass
        with keep_cancellation():
            await asyncio.sleep(0)
        return "read"

    assert await asyncio.create_task(reads()) == "read"


async def test_a_block_entered_while_a_cancellation_was_handled_earlier_is_not_tripped() -> None:
    # `cancelling()` stays raised after a caught cancellation; only a new one counts.
    async def handled_then_reads() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        with keep_cancellation():
            await asyncio.sleep(0)
        return "read"

    task = asyncio.create_task(handled_then_reads())
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "read"
