"""`SyncThreads`: the worker threads of sync handlers, which hung handlers cannot use up.

A thread cannot be stopped. When the engine gives up on a sync handler (timeout, cancel), its
attempt ends but its thread runs on. With the event loop's default executor (6 threads on a
2-CPU machine), six such handlers left every other job's sync handlers waiting for a
thread, and timing out, for as long as they hung.

Here the threads of one pool that were given up on are counted; once they are half of it,
new calls go to a fresh pool. The old pool keeps its other half for the calls already queued
in it, and ends once its hung threads return (a `ThreadPoolExecutor` shut down without
waiting). So at worst hung handlers hold their own threads, never the ones others need.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["SYNC_THREADS", "SyncThreads"]

T = TypeVar("T")

#: Threads per pool: enough for many sync jobs at once, as the default executor on a
#: 28-CPU machine would have.
DEFAULT_THREADS = 32


class SyncThreads:
    """Runs sync functions in worker threads (`run`), replacing the pool in use once half
    its threads are held by calls whose callers stopped waiting (see the module)."""

    def __init__(self, max_workers: int = DEFAULT_THREADS) -> None:
        if max_workers < 2:
            raise ValueError(f"SyncThreads needs at least 2 threads, got {max_workers}")
        self.max_workers = max_workers
        self._lock = threading.Lock()  # callers may be on several event loops (threads)
        self._pool: ThreadPoolExecutor | None = None
        self._given_up = 0  # calls of `_pool` still running after their caller gave up
        #: How many pools were replaced (for tests and diagnostics).
        self.replaced = 0

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` in a worker thread, in a copy of the caller's context (as
        `asyncio.to_thread`). Cancelling the caller abandons a call that has begun."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args)
        with self._lock:
            pool = self._current()
            future = pool.submit(call)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel():  # it has begun: its thread is held until it returns
                self._give_up(pool, future)
            raise

    @property
    def held(self) -> int:
        """Threads of the pool in use held by calls given up on."""
        with self._lock:
            return self._given_up

    def shutdown(self) -> None:
        """End the pool in use without waiting (a new one is made by the next `run`)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._given_up = 0
        if pool is not None:
            pool.shutdown(wait=False)

    def _current(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="agentcron-sync")
        return self._pool

    def _give_up(self, pool: ThreadPoolExecutor, future: Future[Any]) -> None:
        with self._lock:
            if pool is not self._pool:
                return  # already replaced: its threads no longer count
            self._given_up += 1
            if self._given_up * 2 >= self.max_workers:
                self._pool = None
                self._given_up = 0
                self.replaced += 1
                pool.shutdown(wait=False)  # its free threads finish what it queued
                return
        future.add_done_callback(functools.partial(self._returned, pool))

    def _returned(self, pool: ThreadPoolExecutor, _: Future[Any]) -> None:
        with self._lock:
            if pool is self._pool and self._given_up > 0:
                self._given_up -= 1


#: The threads of every sync `CallableHandler` in the process.
SYNC_THREADS = SyncThreads()
