"""Small helpers for the side tasks every long-lived component runs, and for many store
calls at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

__all__ = ["CHUNK", "cancel_and_wait", "map_in_chunks"]

T = TypeVar("T")
R = TypeVar("R")

#: How many calls `map_in_chunks` keeps in flight.
CHUNK = 256


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if any) and wait until it has finished unwinding."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
