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
from agentcron.tasks import cancel_and_wait_all

__all__ = [
    "Finished",
    "JobTimeoutError",
    "UnrecoverableError",
    "Worker",
    "WorkerBackend",
    "run_sync",
]

log = logging.getLogger("agentcron.queue")

#: The longest wait between two tries of a backend that keeps failing (`poll_s` doubles).
MAX_RETRY_WAIT_S = 5.0

#: How long `Worker.close` lets running handlers finish before it cancels them, by default.
DEFAULT_GRACE_S = 30.0
#: How long handlers cancelled at a stop get to unwind (a command's process tree is
#: terminated, then killed after its kill grace) before the worker stops without them.
CANCEL_WAIT_S = 10.0
#: The error recorded on a job released at a forced stop (it goes back to waiting).
STOPPED_ERROR = "the worker stopped before the job finished; it runs again"

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


#: `id()` of the jobs whose sync handler runs in a thread right now (`run_sync`).
_IN_THREAD: set[int] = set()


async def run_sync(func: Callable[[Job], Any], job: Job) -> Any:
    """`func(job)` in the engine's sync-handler threads, as `Worker` runs a sync handler.

    A thread cannot be stopped: when the worker is stopped by force while `func` runs, the
    job is not put back at once (another worker would run it beside the thread) but left to
    stalled-job recovery. Handlers that wrap a sync function run it through here for that.
    """
    _IN_THREAD.add(id(job))
    try:
        result = await SYNC_THREADS.run(func, job)
    except asyncio.CancelledError:
        raise  # still marked: the thread runs on (`Worker._run_one` reads the mark)
    except BaseException:
        _IN_THREAD.discard(id(job))
        raise
    _IN_THREAD.discard(id(job))
    return result


class Worker:
    """Runs `handler(job)` for jobs of one queue, `concurrency` at a time.

    * ``rate_limit=(max, per_s)``: at most `max` jobs start per `per_s` seconds, counted
      across every worker of the queue (SQLite: a window row; Redis: BullMQ's limiter key).
    * A job's lease (``lease_s``) is renewed every ``lease_s / 2`` while the worker holds
      it: while its handler runs and until its outcome is recorded (through a backend
      outage too). Every ``stalled_interval_s`` the worker renews its own leases, then moves
      jobs whose lease expired back to waiting, and to failed after ``max_stalled`` stalls
      (BullMQ's maxStalledCount; 0 fails a job at its first stall).
    * ``timeout_s``: an attempt still running after this many seconds fails with
      `JobTimeoutError` (retried like any failure while the job has attempts left) and
      frees its slot. An async handler is cancelled; a sync one cannot be stopped in its
      thread, so it runs on unwatched and what it returns is ignored. None: no limit.
    * ``run(burst=True)`` returns once nothing is waiting or delayed (after one stalled-job
      check, so the jobs of a dead worker whose lease expired are run too) and its jobs are
      done.
    * ``close()`` stops claiming and waits up to ``grace_s`` (None: no limit) for running
      handlers, recording what they end with; ``close(force=True)`` (or the end of the
      grace) cancels them, as BullMQ's ``close(force)`` and rq's second Ctrl-C do. A
      cancelled async handler's job is released: back to waiting at once, the attempt
      counted as made but not as failed (a job on its last attempt still runs again), its
      error "the worker stopped ...". A sync handler's thread cannot be stopped: its job
      keeps its lease, no longer renewed, and returns through stalled-job recovery. A
      handler that ignores cancellation for ``CANCEL_WAIT_S`` is left running the same way.
      A command (scheduled jobs) has its process tree terminated when cancelled.
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
        grace_s: float | None = DEFAULT_GRACE_S,
    ) -> None:
        if not callable(handler):
            raise QueueInputError(f"handler must be callable (job) -> result, got {handler!r}")
        if not is_count(concurrency, 1):
            raise QueueInputError(
                f"concurrency must be an integer from 1 to {MAX_COUNT}, got {concurrency!r}"
            )
        if rate_limit is not None and (
            not isinstance(rate_limit, tuple | list) or len(rate_limit) != 2
        ):
            raise QueueInputError(
                f"rate_limit must be a pair (max_jobs, per_seconds) or None, got {rate_limit!r}"
            )
        for label, value in (
            ("lease_s", lease_s),
            ("stalled_interval_s", stalled_interval_s),
            ("poll_s", poll_s),
        ):
            if not is_seconds(value) or not value > 0:
                raise QueueInputError(
                    f"{label} must be > 0 and <= {MAX_DELAY_S} seconds, got {value!r}"
                )
        if not is_count(max_stalled, 0):
            raise QueueInputError(
                f"max_stalled must be an integer from 0 to {MAX_COUNT}, got {max_stalled!r}"
            )
        if backoff_strategy is not None and not callable(backoff_strategy):
            raise QueueInputError(
                "backoff_strategy must be a callable (attempt, error, job) -> seconds, or None;"
                f" got {backoff_strategy!r}"
            )
        if timeout_s is not None and not (is_seconds(timeout_s) and timeout_s > 0):
            raise QueueInputError(
                f"timeout_s must be > 0 and <= {MAX_DELAY_S} seconds, or None; got {timeout_s!r}"
            )
        if grace_s is not None and not (is_seconds(grace_s) and grace_s >= 0):
            raise QueueInputError(
                f"grace_s must be >= 0 and <= {MAX_DELAY_S} seconds, or None; got {grace_s!r}"
            )
        self.backend = backend
        self.handler = handler
        self.timeout_s = timeout_s
        self.grace_s = grace_s
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
        #: Side loops' failures in a row, by what they do (`_side_failed`).
        self._side_failures: dict[str, int] = {}
        self._running: dict[asyncio.Task[None], Job] = {}
        #: Tasks given up at a forced stop (`_stop`): their outcomes are not recorded.
        #: Not "absent from `_running`": an eager task factory (Python 3.12+) runs a quick
        #: handler to its end inside `create_task`, before `_start` adds its task there, and
        #: every outcome was dropped.
        self._given_up: set[asyncio.Task[None]] = set()
        self._finished: list[Finished] = []
        #: Outcomes handed to the backend by the `exchange` under way (leases still held).
        self._settling: list[Finished] = []
        self._wake = asyncio.Event()
        self._closing = False
        #: Set once running handlers are being cancelled (forced stop or grace over).
        self._cancelling = False
        self._force = asyncio.Event()
        self._stopper: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._active = False

    @property
    def running(self) -> int:
        """How many handlers are running now."""
        return len(self._running)

    # -- lifecycle --------------------------------------------------------------------
    async def run(self, burst: bool = False) -> None:
        """Process jobs until `close()` (or, with `burst`, until the queue is drained)."""
        if self._active:
            raise QueueError("this worker is already running")
        self._active = True
        self._done.clear()
        side = [
            asyncio.create_task(self._renew_loop(), name="queue-lease"),
            asyncio.create_task(self._stall_loop(), name="queue-stalled"),
            asyncio.create_task(self._repeat_loop(), name="queue-repeat"),
        ]
        try:
            await self._loop(burst)
        finally:
            await cancel_and_wait_all(side)
            await self._drain_running()
            self._active = False
            self._done.set()

    async def close(self, *, force: bool = False) -> None:
        """Stop claiming and return once the worker stopped.

        Running handlers get ``grace_s`` seconds to finish (their outcomes are recorded);
        then, or at once with `force` (a second close, e.g. a second SIGINT), they are
        cancelled and their jobs released or left to stalled recovery (see the class).
        """
        first = not self._closing
        self._closing = True
        self._wake.set()
        if force:
            self._force.set()
        if not self._active:
            return
        if first:
            self._log_stopping(force)
            self._stopper = asyncio.create_task(self._stop(), name="queue-stop")
        await self._done.wait()

    def _log_stopping(self, force: bool) -> None:
        if not self._running:
            log.warning("queue %s: stopping: no new jobs", self.backend.name)
            return
        if force:
            within = "cancelling them"
        elif self.grace_s is None:
            within = "waiting for them to finish"
        else:
            within = f"waiting up to {self.grace_s:g}s for them to finish, then cancelling them"
        log.warning(
            "queue %s: stopping: no new jobs; %d running job(s): %s",
            self.backend.name,
            len(self._running),
            within,
        )

    async def _stop(self) -> None:
        """Wait for the grace (or a forced close), cancel what still runs, and give the
        cancelled handlers `CANCEL_WAIT_S` before stopping without them."""
        clock = self.backend.clock
        waits: list[Any] = [self._done.wait(), self._force.wait()]
        if self.grace_s is not None:
            waits.append(clock.sleep(self.grace_s))
        await self._race(*waits)
        if self._done.is_set():
            return
        self._cancelling = True
        tasks = list(self._running)
        if tasks:
            log.warning(
                "queue %s: cancelling %d running job(s)%s",
                self.backend.name,
                len(tasks),
                "" if self._force.is_set() else f" after the grace of {self.grace_s:g}s",
            )
        for task in tasks:
            task.cancel()
        await self._race(self._done.wait(), clock.sleep(CANCEL_WAIT_S))
        if self._done.is_set():
            return
        left = list(self._running)
        if left:
            log.warning(
                "queue %s: %d job(s) ignored cancellation for %gs: left running, their jobs"
                " return through stalled-job recovery",
                self.backend.name,
                len(left),
                CANCEL_WAIT_S,
            )
        for task in left:
            self._given_up.add(task)
            task.add_done_callback(_ignore_outcome)
            task.add_done_callback(self._given_up.discard)
        self._running.clear()
        self._wake.set()

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the loop ---------------------------------------------------------------------
    async def _loop(self, burst: bool) -> None:
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                # Cancelled, and an await below swallowed it (a backend client's cleanup
                # can): a burst worker waiting for a delayed job would wait for ever.
                raise asyncio.CancelledError
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
            if burst and not await self._has_work() and not await self._recovered_work():
                return
            await self._wait_idle(self._idle_wait(hint))

    async def _exchange(
        self, finished: list[Finished], free: int
    ) -> tuple[list[Job], float | None]:
        self._claims += 1
        token = f"{self.id}:{self._claims}"
        self._settling = finished
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
        finally:
            self._settling = []
        self._backend_answered()
        if self.backend.events is not None:
            for f in finished:
                self._publish(
                    f.job, _STATE_AFTER[f.outcome](f), f.value if f.outcome != "completed" else None
                )
        return claimed

    async def _recovered_work(self) -> bool:
        """Whether a stalled-job check (jobs of a dead worker, lease expired) made work."""
        return await self._check_stalled() and await self._has_work()

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
        task = asyncio.current_task()
        try:
            if self.timeout_s is None:
                result = await self._call(job)
            else:
                result = await self._call_within(job, self.timeout_s)
        except asyncio.CancelledError:
            # A sync handler's thread runs on: its job is not released (see the class).
            if self._cancelling and id(job) not in _IN_THREAD and task not in self._given_up:
                self._finished.append(Finished(job, "retry", STOPPED_ERROR))
            raise
        except Exception as exc:
            outcome = self._decide(job, exc)
        else:
            outcome = Finished(job, "completed", json_safe(result))
        finally:
            _IN_THREAD.discard(id(job))
        if task in self._given_up:
            return  # given up at a forced stop: its job is left to stalled-job recovery
        self._finished.append(outcome)
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
        result = await run_sync(handler, job)
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
            # (A `Worker.run()` task cancelled while this unwound the losers went on for
            # ever: the cancellation was suppressed with theirs.)
            await cancel_and_wait_all(tasks)

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
    def _held(self) -> list[Job]:
        """The jobs this worker holds a lease on: running, or finished and not yet recorded."""
        return [
            *self._running.values(),
            *(f.job for f in self._settling),
            *(f.job for f in self._finished),
        ]

    async def _renew_loop(self) -> None:
        while True:
            await self.backend.clock.sleep(self.lease_s / 2)
            try:
                await self._renew()
            except Exception as exc:
                self._side_failed("renewing leases", exc)
            else:
                self._side_answered("renewing leases")

    async def _renew(self) -> None:
        jobs = self._held()
        if not jobs:
            return
        lost = await self.backend.extend(jobs, self.lease_s)
        # A job recorded while the renewal was under way (Redis) is not lost.
        held = {id(job) for job in self._held()}
        for job in jobs:
            if job.id in lost and id(job) in held:
                log.warning("queue %s: lost the lease of job %s", self.backend.name, job.id)

    async def _stall_loop(self) -> None:
        while True:
            await self._check_stalled()
            await self.backend.clock.sleep(self.stalled_interval_s)

    async def _check_stalled(self) -> bool:
        """Renew this worker's own leases, then recover stalled jobs; False when the backend
        failed. Renewing first matters after an outage longer than the lease: the worker's
        own jobs (running, or finished and waiting to be recorded) are not stalled."""
        try:
            await self._renew()
            await self.backend.recover_stalled(self.max_stalled, self.stalled_interval_s)
        except Exception as exc:
            self._side_failed("stalled check", exc)
            return False
        self._side_answered("stalled check")
        return True

    async def _repeat_loop(self) -> None:
        while True:
            wait_s: float | None = None
            try:
                wait_s = await self.backend.tick_repeatables()
            except Exception as exc:
                self._side_failed("repeatable jobs", exc)
            else:
                self._side_answered("repeatable jobs")
            await self.backend.clock.sleep(min(wait_s if wait_s is not None else 5.0, 5.0))

    def _side_failed(self, what: str, exc: Exception) -> None:
        """Log a side loop's failure when an outage begins; later ones only at debug level."""
        failures = self._side_failures.get(what, 0) + 1
        self._side_failures[what] = failures
        if failures == 1:
            log.warning(
                "queue %s: %s failed, retrying until it works: %s", self.backend.name, what, exc
            )
        else:
            log.debug("queue %s: %s failed (%d in a row): %s", self.backend.name, what,
                      failures, exc)  # fmt: skip

    def _side_answered(self, what: str) -> None:
        failures = self._side_failures.pop(what, 0)
        if failures:
            log.warning(
                "queue %s: %s works again after %d failed attempt(s)",
                self.backend.name,
                what,
                failures,
            )

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
