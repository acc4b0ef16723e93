"""Small helpers for the side tasks every long-lived component runs, and for many store
calls at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

__all__ = [
    "CHUNK",
    "cancel_and_join",
    "cancel_and_wait",
    "cancel_and_wait_all",
    "hold_while_running",
    "join",
    "keep_cancellation",
    "map_in_chunks",
    "yield_to_creator",
]

T = TypeVar("T")
R = TypeVar("R")

#: How many calls `map_in_chunks` keeps in flight.
CHUNK = 256


def hold_while_running(tasks: set[asyncio.Task[Any]], task: asyncio.Task[Any]) -> None:
    """Keep `task` in `tasks` (what a `drain()` waits for) until it ends.

    A task that an eager task factory (Python 3.12+) already ran to its end is not kept: its
    done callback would only come in a later turn, and a drain looping until `tasks` is empty
    would spin on it until then."""
    if not task.done():
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def yield_to_creator() -> None:
    """At the start of a task: give the code that created it the rest of its turn of the event
    loop first, when the task may have been started eagerly.

    On the default loop a new task's first step runs in a later turn anyway. A task factory
    may start it at once instead, inside `create_task` (`asyncio.eager_task_factory`, Python
    3.12+), before its creator has stored the task or queued what it is meant to take (a batch
    task created by the first record of a turn would take only that record). Yielding there
    costs one turn per such task; on the default loop (no factory) it costs nothing.
    """
    if asyncio.get_running_loop().get_task_factory() is not None:
        await asyncio.sleep(0)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if any) and wait until it has finished unwinding."""
    if task is not None:
        await cancel_and_wait_all([task])


async def cancel_and_wait_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until they have finished unwinding; their outcomes (their
    own cancellation, an error) are retrieved and dropped.

    Invariant: a cancellation of the *calling* task that arrives meanwhile propagates. The
    usual `with suppress(CancelledError): await task` cannot tell the two apart and
    swallows it: a loop calling it (a queue worker waiting for one of several events) then
    went on for ever after its `Task.cancel()`."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if not pending:
        return
    await asyncio.wait(pending)  # raises CancelledError only when the caller is cancelled
    for task in pending:
        if not task.cancelled():
            task.exception()


async def join(task: asyncio.Future[Any]) -> None:
    """Wait for `task` to end; raise its error, if it failed with one (its own cancellation
    is not an error).

    Invariant: a cancellation of the *calling* task propagates, as in `cancel_and_wait_all`:
    `with suppress(CancelledError): await task` cannot tell it from the task's own."""
    await asyncio.wait((task,))  # raises CancelledError only when the caller is cancelled
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error


async def cancel_and_join(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` (if any), wait until it has finished unwinding and raise the error it
    ended with, if any other than its cancellation (`join`)."""
    if task is not None:
        task.cancel()
        await join(task)


class keep_cancellation:  # (lower case: a `with` statement, as `contextlib.suppress`)
    """Wrap a call into a library that may swallow a cancellation of the calling task:
    `with keep_cancellation(): await client.get(key)`. When the call returns normally
    although the task was cancelled meanwhile, `CancelledError` is raised at the end of the
    block, so the cancellation is not lost.

    Why: on Python 3.11 `asyncio.wait_for` returns its inner result when the outer task is
    cancelled at the moment the inner one completes, and the cancellation is gone. redis-py
    sends every command through `wait_for` when a socket timeout is set, so a stop that
    cancels a task talking to Redis could wait for that task for ever (`Scheduler.stop` on a
    Redis store did, right after start).

    Invariant: it compares `Task.cancelling()` before and after. A cancellation that was
    delivered and handled inside (an `asyncio.timeout` turning its own into `TimeoutError`)
    is uncounted again and does not trip it; code inside must not catch a cancellation of
    the task and go on without `Task.uncancel()`, or that cancellation is raised here.
    """

    __slots__ = ("_task", "_asked")

    def __enter__(self) -> None:
        self._task = asyncio.current_task()
        self._asked = 0 if self._task is None else self._task.cancelling()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None and self._task is not None and self._task.cancelling() > self._asked:
            raise asyncio.CancelledError("cancelled while a library call swallowed it")


async def map_in_chunks(
    fn: Callable[[T], Awaitable[R]], items: Sequence[T], *, chunk: int = CHUNK
) -> list[R]:
    """`[await fn(item) for item in items]`, but `chunk` calls at a time.

    One call after another waits for one event-loop turn each, and a turn of a loaded loop
    (thousands of fires due at once) can take a good fraction of a second: thousands of
    sequential store calls then take minutes. Calls in flight together cost one turn, and a
    store that groups commits (SQLite's writer, a Redis connection) serves them together.
    The first exception propagates once its chunk has finished.
    """
    results: list[R] = []
    for start in range(0, len(items), chunk):
        results.extend(await asyncio.gather(*(fn(item) for item in items[start : start + chunk])))
    return results
