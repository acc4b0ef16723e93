"""`SyncThreads`: the worker threads of sync handlers, which hung handlers cannot use up.

A thread cannot be stopped. When the engine gives up on a sync handler (timeout, cancel), its
attempt ends but its thread runs on. With the event loop's default executor (6 threads on a
2-CPU machine), six such handlers left every other job's sync handlers waiting for a
thread, and timing out, for as long as they hung.

Here the threads of one pool that were given up on are counted; once they are half of it,
new calls go to a fresh pool. The old pool keeps its other half for the calls already queued
in it, and ends once its hung threads return (a pool shut down without waiting). So at worst
hung handlers hold their own threads, never the ones others need.

The pools are `DaemonThreadPool`s, not `ThreadPoolExecutor`s: the interpreter waits for
every `ThreadPoolExecutor` thread before it exits, so one hung handler kept `agentcron run`
(or any program using a `Scheduler`) from ever ending after SIGTERM or Ctrl+C, though the
scheduler had recorded the run `cancelled` and stopped. A call still running at exit was
given up on by then (`Scheduler.stop` waits for runs up to its grace period).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["SYNC_THREADS", "DaemonThreadPool", "SyncThreads"]

T = TypeVar("T")

#: Threads per pool: enough for many sync jobs at once, as the default executor on a
#: 28-CPU machine would have.
DEFAULT_THREADS = 32


_Call = tuple["Future[Any]", Callable[[], Any]]


class DaemonThreadPool:
    """Up to `max_workers` daemon threads running the calls `submit`ted, in order: the part
    of `ThreadPoolExecutor` that `SyncThreads` uses, with threads that never hold up the
    interpreter's exit (see the module docstring). A thread is started only when no idle
    one can take a call; idle threads wait for the next."""

    _numbers = itertools.count(1)

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # released by a thread each time it is free
        self._lock = threading.Lock()
        self._threads = 0
        self._shut = False

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        """Run `call()` in a thread of the pool; its future can be cancelled until then."""
        future: Future[Any] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._calls.put((future, call))
            if not self._idle.acquire(blocking=False) and self._threads < self.max_workers:
                self._threads += 1
                name = f"{self._prefix}_{next(self._numbers)}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def shutdown(self) -> None:
        """Take no more calls; the threads end once the calls already queued have run (a
        thread running a hung call ends when, if ever, it returns)."""
        with self._lock:
            self._shut = True
            for _ in range(self._threads):
                self._calls.put(None)

    def _work(self) -> None:
        while (item := self._calls.get()) is not None:
            future, call = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as exc:  # handed to the caller, as an executor does
                    if isinstance(exc, StopIteration):
                        # An asyncio future refuses StopIteration (`wrap_future` would fail
                        # in a loop callback and its caller wait forever): as a coroutine
                        # raising it does, it becomes a RuntimeError.
                        error = RuntimeError(f"{_name(call)} raised StopIteration")
                        error.__cause__ = exc
                        exc = error
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, call  # not kept alive while idle
            self._idle.release()


def _name(call: Callable[[], Any]) -> str:
    """The name of the function `SyncThreads.run` wrapped in `call`, for messages."""
    args = getattr(call, "args", ())
    func = args[0] if args else call
    return str(getattr(func, "__qualname__", None) or type(func).__qualname__)


class SyncThreads:
    """Runs sync functions in worker threads (`run`), replacing the pool in use once half
    its threads are held by calls whose callers stopped waiting (see the module)."""

    def __init__(self, max_workers: int = DEFAULT_THREADS) -> None:
        if max_workers < 2:
            raise ValueError(f"SyncThreads needs at least 2 threads, got {max_workers}")
        self.max_workers = max_workers
        self._lock = threading.Lock()  # callers may be on several event loops (threads)
        self._pool: DaemonThreadPool | None = None
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
            pool.shutdown()

    def _current(self) -> DaemonThreadPool:
        if self._pool is None:
            self._pool = DaemonThreadPool(self.max_workers, thread_name_prefix="agentcron-sync")
        return self._pool

    def _give_up(self, pool: DaemonThreadPool, future: Future[Any]) -> None:
        with self._lock:
            if pool is not self._pool:
                return  # already replaced: its threads no longer count
            self._given_up += 1
            if self._given_up * 2 >= self.max_workers:
                self._pool = None
                self._given_up = 0
                self.replaced += 1
                pool.shutdown()  # its free threads finish what it queued
                return
        future.add_done_callback(functools.partial(self._returned, pool))

    def _returned(self, pool: DaemonThreadPool, _: Future[Any]) -> None:
        with self._lock:
            if pool is self._pool and self._given_up > 0:
                self._given_up -= 1


#: The threads of every sync `CallableHandler` in the process.
SYNC_THREADS = SyncThreads()
