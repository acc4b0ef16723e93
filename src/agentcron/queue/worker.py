"""The worker: claims jobs from a backend, runs the handler, reports the outcome.

One `Worker` drives any backend through the narrow `WorkerBackend` seam below, so retry,
backoff, concurrency, rate limiting, lease renewal, stalled-job recovery, repeatables and
graceful shutdown behave the same on SQLite and Redis.

Throughput comes from batching: outcomes of finished handlers are handed to the backend
together with the next claim (`exchange`), so one SQLite transaction or one Redis pipeline
round trip settles many jobs and claims the next ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agentcron.clock import Clock
from agentcron.error_text import describe_error
from agentcron.events import EventBus, QueueJobStateChanged
from agentcron.handlers.threads import SYNC_THREADS
from agentcron.queue.base import (
    MAX_COUNT,
    MAX_DELAY_S,
    Handler,
    Job,
    QueueError,
    QueueInputError,
    RateLimit,
    is_count,
    is_seconds,
    json_safe,
)

__all__ = ["Finished", "JobTimeoutError", "UnrecoverableError", "Worker", "WorkerBackend"]

log = logging.getLogger("agentcron.queue")

#: The longest wait between two tries of a backend that keeps failing (`poll_s` doubles).
MAX_RETRY_WAIT_S = 5.0

#: A custom backoff: (attempt that failed, the error, the job) -> seconds (< 0: give up).
BackoffStrategy = Callable[[int, BaseException, Job], float]


_STATE_AFTER: dict[str, Callable[[Finished], str]] = {
    "completed": lambda f: "completed",
    "failed": lambda f: "failed",
    "retry": lambda f: "delayed" if f.delay_s > 0 else "waiting",
}


class UnrecoverableError(Exception):
    """Raise from a handler to fail the job at once, without its remaining attempts."""


class JobTimeoutError(TimeoutError):
    """A handler ran longer than the worker's `timeout_s`: the attempt failed (and is
    retried like any failure while the job has attempts left)."""


@dataclass(slots=True)
class Finished:
    """A handler's outcome for the backend: ``completed`` (value = result), ``retry`` after
    ``delay_s`` (value = error text), or ``failed`` for good (value = error text)."""

    job: Job
    outcome: Literal["completed", "retry", "failed"]
    value: Any = None
    delay_s: float = 0.0


class WorkerBackend(Protocol):
    """What a backend does for a worker. Each call is one atomic step on the backend."""

    name: str
    clock: Clock
    events: EventBus | None

    async def exchange(
        self,
        finished: Sequence[Finished],
        claim: int,
        *,
        token: str,
        lease_s: float,
        rate: RateLimit | None,
    ) -> tuple[list[Job], float | None]:
        """Record `finished` (only where the job's lease token still matches), then claim up
        to `claim` waiting jobs in priority order under a lease of `lease_s`.

        Returns the claimed jobs and, when fewer than asked were available, the seconds
        until more may be (next delayed job due or rate-limit window end), or None.
        """
        ...

    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        """Renew the leases of `jobs`; returns the ids whose lease was lost."""
        ...

    async def recover_stalled(self, max_stalled: int, stalled_interval_s: float) -> None:
        """Move jobs whose lease expired back to waiting (or to failed past `max_stalled`)."""
        ...

    async def report_progress(self, job: Job, pct: float) -> None: ...

    async def has_work(self) -> bool:
        """True while a job is waiting (queue not paused) or delayed."""
        ...

    async def wait_for_work(self, timeout_s: float) -> None:
        """Return when work may have arrived, or after `timeout_s`."""
        ...

    async def tick_repeatables(self) -> float | None:
        """Enqueue due repeatable occurrences; seconds until the next one matters, or None."""
        ...


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class Worker:
    """Runs `handler(job)` for jobs of one queue, `concurrency` at a time.

    * ``rate_limit=(max, per_s)``: at most `max` jobs start per `per_s` seconds, counted
      across every worker of the queue (SQLite: a window row; Redis: BullMQ's limiter key).
    * A job's lease (``lease_s``) is renewed every ``lease_s / 2`` while its handler runs;
      every ``stalled_interval_s`` the worker moves jobs whose lease expired back to
      waiting, and to failed after ``max_stalled`` stalls (BullMQ's maxStalledCount).
    * ``timeout_s``: an attempt still running after this many seconds fails with
      `JobTimeoutError` (retried like any failure while the job has attempts left) and
      frees its slot. An async handler is cancelled; a sync one cannot be stopped in its
      thread, so it runs on unwatched and what it returns is ignored. None: no limit.
    * ``run(burst=True)`` returns once nothing is waiting or delayed and its jobs are done;
      ``close()`` stops claiming, waits for running handlers, records them and returns.
    """

    def __init__(
        self,
        backend: WorkerBackend,
        handler: Handler,
        *,
        concurrency: int = 1,
        rate_limit: tuple[int, float] | None = None,
        lease_s: float = 30.0,
        stalled_interval_s: float = 30.0,
        max_stalled: int = 1,
        poll_s: float = 0.2,
        backoff_strategy: BackoffStrategy | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if not is_count(concurrency, 1):
            raise QueueInputError(
                f"concurrency must be an integer from 1 to {MAX_COUNT}, got {concurrency!r}"
            )
        for value in (lease_s, stalled_interval_s, poll_s):
            if not is_seconds(value) or not value > 0:
                raise QueueInputError(
                    f"lease_s, stalled_interval_s and poll_s must be > 0 and <= {MAX_DELAY_S}"
                    f" seconds, got {value!r}"
                )
        if timeout_s is not None and not (is_seconds(timeout_s) and timeout_s > 0):
            raise QueueInputError(
                f"timeout_s must be > 0 and <= {MAX_DELAY_S} seconds, or None; got {timeout_s!r}"
            )
        self.backend = backend
        self.handler = handler
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.rate = RateLimit(*rate_limit) if rate_limit is not None else None
        self.lease_s = lease_s
        self.stalled_interval_s = stalled_interval_s
        self.max_stalled = max_stalled
        self.poll_s = poll_s
        self.backoff_strategy = backoff_strategy
        self.id = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.processed = 0
        self._claims = 0
        #: Backend calls failed in a row (`_backend_failed`).
        self._failures = 0
        self._running: dict[asyncio.Task[None], Job] = {}
        self._finished: list[Finished] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._done = asyncio.Event()
        self._active = False

    # -- lifecycle --------------------------------------------------------------------
    async def run(self, burst: bool = False) -> None:
        """Process jobs until `close()` (or, with `burst`, until the queue is drained)."""
        if self._active:
            raise QueueError("this worker is already running")
        self._active = True
        self._done.clear()
        side = [
            asyncio.create_task(self._every(self.lease_s / 2, self._renew), name="queue-lease"),
            asyncio.create_task(self._stall_loop(), name="queue-stalled"),
            asyncio.create_task(self._repeat_loop(), name="queue-repeat"),
        ]
        try:
            await self._loop(burst)
        finally:
            for task in side:
                task.cancel()
            for task in side:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._drain_running()
            self._active = False
            self._done.set()

    async def close(self) -> None:
        """Stop claiming, let running handlers finish, record them, and return."""
        self._closing = True
        self._wake.set()
        if self._active:
            await self._done.wait()

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the loop ---------------------------------------------------------------------
    async def _loop(self, burst: bool) -> None:
        while True:
            free = 0 if self._closing else self.concurrency - len(self._running)
            finished, self._finished = self._finished, []
            hint: float | None = None
            claimed: list[Job] = []
            if finished or free > 0:
                claimed, hint = await self._exchange(finished, free)
                for job in claimed:
                    self._start(job)
            if self._closing and not self._running and not self._finished:
                return
            if claimed and len(claimed) == free:
                await self._wait_for_slot()
                continue
            if self._finished:
                continue
            if self._running:
                await self._wait_for_slot(timeout_s=self._idle_wait(hint))
                continue
            if burst and not await self._has_work():
                return
            await self._wait_idle(self._idle_wait(hint))

    async def _exchange(
        self, finished: list[Finished], free: int
    ) -> tuple[list[Job], float | None]:
        self._claims += 1
        token = f"{self.id}:{self._claims}"
        try:
            claimed = await self.backend.exchange(
                finished, free, token=token, lease_s=self.lease_s, rate=self.rate
            )
        except QueueError:
            raise
        except Exception as exc:  # backend hiccup (Redis restart, locked file): retry
            self._finished = finished + self._finished
            await self._backend_failed(exc)
            return [], None
        self._backend_answered()
        if self.backend.events is not None:
            for f in finished:
                self._publish(
                    f.job, _STATE_AFTER[f.outcome](f), f.value if f.outcome != "completed" else None
                )
        return claimed

    async def _has_work(self) -> bool:
        try:
            return await self.backend.has_work()
        except Exception as exc:  # unreachable backend: assume work, retry after a pause
            await self._backend_failed(exc)
            return True

    async def _backend_failed(self, exc: Exception) -> None:
        """Wait before trying the backend again: `poll_s`, doubled after each failure in a
        row up to `MAX_RETRY_WAIT_S`. An outage is logged when it begins and when it ends,
        not at every attempt (at `poll_s` = 0.2 s that was 5 warnings a second)."""
        self._failures += 1
        if self._failures == 1:
            log.warning(
                "queue %s: backend error, retrying until it answers: %s", self.backend.name, exc
            )
        else:
            log.debug("queue %s: backend error (%d in a row): %s", self.backend.name,
                      self._failures, exc)  # fmt: skip
        wait_s = self.poll_s * 2 ** min(self._failures - 1, 32)
        await self.backend.clock.sleep(min(max(MAX_RETRY_WAIT_S, self.poll_s), wait_s))

    def _backend_answered(self) -> None:
        if self._failures:
            log.warning(
                "queue %s: backend answers again after %d failed attempt(s)",
                self.backend.name,
                self._failures,
            )
            self._failures = 0

    def _idle_wait(self, hint: float | None) -> float:
        if hint is None:
            return self.poll_s
        return max(min(hint, self.poll_s), 0.0)

    def _start(self, job: Job) -> None:
        job._sink = self.backend.report_progress
        self._publish(job, "active")
        task = asyncio.create_task(self._run_one(job))
        self._running[task] = job
        task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()

    async def _run_one(self, job: Job) -> None:
        try:
            if self.timeout_s is None:
                result = await self._call(job)
            else:
                result = await self._call_within(job, self.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._finished.append(self._decide(job, exc))
        else:
            self._finished.append(Finished(job, "completed", json_safe(result)))
        self.processed += 1

    async def _call(self, job: Job) -> Any:
        """The handler's result: async handlers awaited, sync ones run in a thread."""
        handler = self.handler
        if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
        ):
            return await handler(job)
        # The engine's sync-handler threads: daemon threads (a hung handler cannot keep
        # the process from exiting) that hung calls cannot all take.
        result = await SYNC_THREADS.run(handler, job)
        if inspect.isawaitable(result):
            return await result
        return result

    async def _call_within(self, job: Job, timeout_s: float) -> Any:
        """`_call`, failing with `JobTimeoutError` after `timeout_s` of the clock."""
        call = asyncio.ensure_future(self._call(job))
        timer = asyncio.ensure_future(self.backend.clock.sleep(timeout_s))
        try:
            await asyncio.wait({call, timer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            timer.cancel()
        if call.done():
            return call.result()
        call.cancel()
        # Not awaited: a handler that ignores cancellation must not hold the slot. Whatever
        # it ends with later is read here, so it is never reported as unretrieved.
        call.add_done_callback(_ignore_outcome)
        raise JobTimeoutError(f"timed out after {timeout_s:g}s")

    def _decide(self, job: Job, exc: BaseException) -> Finished:
        error = describe_error(exc)
        if isinstance(exc, UnrecoverableError) or job.attempt >= job.attempts:
            return Finished(job, "failed", error)
        backoff = job.backoff
        delay_s = 0.0
        if backoff is not None and backoff.kind == "custom":
            if self.backoff_strategy is None:
                return Finished(job, "failed", f"{error} (custom backoff without a strategy)")
            try:
                delay_s = float(self.backoff_strategy(job.attempt, exc, job))
            except Exception as strategy_exc:
                why = f"backoff strategy failed: {describe_error(strategy_exc)}"
                return Finished(job, "failed", f"{error} ({why})")
            if math.isnan(delay_s):
                return Finished(job, "failed", f"{error} (backoff strategy returned nan)")
            if delay_s < 0:
                return Finished(job, "failed", error)
        elif backoff is not None:
            delay_s = backoff.delay_after(job.attempt)
        return Finished(job, "retry", error, min(delay_s, MAX_DELAY_S))

    async def _wait_for_slot(self, timeout_s: float | None = None) -> None:
        self._wake.clear()
        if self._finished:
            return
        if timeout_s is None:
            await self._wake.wait()
            return
        await self._race(self._wake.wait(), self.backend.clock.sleep(timeout_s))

    async def _wait_idle(self, timeout_s: float) -> None:
        self._wake.clear()
        await self._race(self._wake.wait(), self.backend.wait_for_work(timeout_s))

    @staticmethod
    async def _race(*aws: Any) -> None:
        tasks = [asyncio.ensure_future(a) for a in aws]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _drain_running(self) -> None:
        while self._running:
            await asyncio.wait(list(self._running))
        if self._finished:
            finished, self._finished = self._finished, []
            with contextlib.suppress(Exception):
                await self.backend.exchange(
                    finished, 0, token=f"{self.id}:end", lease_s=self.lease_s, rate=None
                )

    # -- side loops -------------------------------------------------------------------
    async def _every(self, interval_s: float, action: Callable[[], Any]) -> None:
        while True:
            await self.backend.clock.sleep(interval_s)
            try:
                await action()
            except Exception as exc:
                log.warning("queue %s: %s failed: %s", self.backend.name, action, exc)

    async def _renew(self) -> None:
        jobs = list(self._running.values())
        if not jobs:
            return
        for job_id in await self.backend.extend(jobs, self.lease_s):
            log.warning("queue %s: lost the lease of job %s", self.backend.name, job_id)

    async def _stall_loop(self) -> None:
        while True:
            try:
                await self.backend.recover_stalled(self.max_stalled, self.stalled_interval_s)
            except Exception as exc:
                log.warning("queue %s: stalled check failed: %s", self.backend.name, exc)
            await self.backend.clock.sleep(self.stalled_interval_s)

    async def _repeat_loop(self) -> None:
        while True:
            wait_s: float | None = None
            try:
                wait_s = await self.backend.tick_repeatables()
            except Exception as exc:
                log.warning("queue %s: repeatable jobs failed: %s", self.backend.name, exc)
            await self.backend.clock.sleep(min(wait_s if wait_s is not None else 5.0, 5.0))

    def _publish(self, job: Job, state: str, error: str | None = None) -> None:
        bus = self.backend.events
        if bus is not None:
            bus.publish(
                QueueJobStateChanged(
                    at=self.backend.clock.now(),
                    queue=self.backend.name,
                    job_id=job.id,
                    state=state,
                    attempt=job.attempt,
                    error=error,
                )
            )
