"""Scheduled jobs on queues: the engine enqueues a fire, a queue worker runs it.

A job added with ``queue="name"`` is not run inline by the `Scheduler`: give the scheduler
``dispatch=queue_dispatch(queues)`` and, at the fire time, the fire is enqueued on that
queue under its occurrence key (so a fire is enqueued once, whichever node fires it), and
its run is recorded ``scheduled`` with the queue job id. A worker whose handler is a
`ScheduledJobRunner` runs the job's handler and writes the same run record as it goes:
``running`` (attempt n), then ``succeeded``, ``failed`` or ``timed_out``.

Retries follow the job's `Retry` policy, applied once, by the queue: the queue job gets the
policy's ``max_attempts`` and a custom backoff that asks the policy for each delay. ::

    queue = open_queue("sqlite:///data/scheduler.db", "agent")
    sched = Scheduler(store, dispatch=queue_dispatch({"agent": queue}))
    runner = ScheduledJobRunner(store)
    worker = queue.worker(runner, backoff_strategy=runner.backoff_strategy)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from agentcron.clock import Clock, SystemClock
from agentcron.events import EventBus, RunFailed, RunStarted, RunSucceeded, RunTimedOut
from agentcron.handlers.base import HandlerOutcome, RunContext
from agentcron.jobs import Job as ScheduledJob
from agentcron.jobs import job_from_definition
from agentcron.models import RunRecord, RunStatus
from agentcron.queue.base import Backoff, Job, Queue, QueueError
from agentcron.queue.dispatch import dispatch_to_queue
from agentcron.queue.worker import UnrecoverableError
from agentcron.store.base import Store

__all__ = ["ScheduledJobRunner", "queue_dispatch"]

log = logging.getLogger("agentcron.queue")
_JOB_LOG = logging.getLogger("agentcron.job")
_TAIL_CHARS = 4000

QueueLookup = Mapping[str, Queue] | Callable[[str], Queue]


def queue_dispatch(
    queues: QueueLookup,
) -> Callable[[ScheduledJob, datetime, RunRecord], Any]:
    """The `Scheduler(dispatch=...)` seam: enqueue each fire of a job with ``queue=``.

    `queues` maps a queue name to an open `Queue` (a dict, or a function). Returns the
    coroutine function the engine awaits with ``(job, scheduled_for, run)``; it returns the
    queue job id (the fire's occurrence key).
    """

    def lookup(name: str) -> Queue:
        queue = queues(name) if callable(queues) else queues.get(name)
        if queue is None:
            raise QueueError(f"no queue named {name!r} is configured")
        return queue

    async def dispatch(job: ScheduledJob, scheduled_for: datetime, run: RunRecord) -> str:
        assert job.queue is not None
        attempts = job.retry.max_attempts
        return await dispatch_to_queue(
            lookup(job.queue),
            job.id,
            scheduled_for,
            {"run_id": run.run_id},
            attempts=attempts,
            backoff=Backoff("custom") if attempts > 1 else None,
        )

    return dispatch


class ScheduledJobRunner:
    """A queue handler that runs dispatched fires and keeps their run records.

    The job's definition comes from `jobs(job_id)` when given (a scheduler in this process),
    else from `store`. Pass `backoff_strategy` to the worker so retries follow the job's
    `Retry` policy.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        events: EventBus | None = None,
        node_id: str | None = None,
        jobs: Callable[[str], ScheduledJob | None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.events = events
        self.node_id = node_id or f"{socket.gethostname()}:{os.getpid()}"
        self.jobs = jobs
        self.rng = rng or random.Random()
        self._delays: dict[str, float] = {}

    async def __call__(self, qjob: Job) -> dict[str, Any]:
        data = qjob.data if isinstance(qjob.data, dict) else {}
        job_id, when = data.get("job_id"), data.get("scheduled_for")
        if not isinstance(job_id, str) or not isinstance(when, str):
            raise UnrecoverableError("not a dispatched fire: data lacks job_id/scheduled_for")
        scheduled_for = datetime.fromisoformat(when)
        job = await self._job(job_id)
        raw_payload = data.get("payload")
        payload = raw_payload if isinstance(raw_payload, dict) else {}
        run_id = str(payload.get("run_id") or qjob.id)
        record = await self._start(job_id, run_id, scheduled_for, qjob)
        status, outcome, error = await self._attempt(job, record, scheduled_for)
        if status == RunStatus.succeeded:
            tail = outcome.output_tail if isinstance(outcome, HandlerOutcome) else None
            await self._finish(record, RunStatus.succeeded, output_tail=_tail(tail))
            return {"run_id": run_id, "status": "succeeded"}
        assert error is not None
        message = f"{type(error).__name__}: {error}"
        delay = job.retry.next_delay(qjob.attempt, error, rng=self.rng)
        if delay is None or qjob.attempt >= qjob.attempts:
            await self._finish(record, status, error=message, timeout_s=job.timeout_s)
            raise UnrecoverableError(message)
        self._delays[qjob.id] = delay
        await self.store.record_run(record.evolve(status=RunStatus.scheduled, error=message))
        raise error

    def backoff_strategy(self, attempt: int, error: BaseException, qjob: Job) -> float:
        """Seconds before the next attempt, as the job's `Retry` policy decided."""
        return self._delays.pop(qjob.id, 0.0)

    async def _job(self, job_id: str) -> ScheduledJob:
        if self.jobs is not None:
            job = self.jobs(job_id)
            if job is not None:
                return job
        stored = await self.store.get_job(job_id)
        if stored is None:
            raise UnrecoverableError(f"job {job_id!r} no longer exists")
        return job_from_definition(job_id, stored.definition)

    async def _start(
        self, job_id: str, run_id: str, scheduled_for: datetime, qjob: Job
    ) -> RunRecord:
        now = self.clock.now()
        existing = await self.store.get_run(run_id)
        base = existing or RunRecord(
            run_id=run_id, job_id=job_id, scheduled_for=scheduled_for, status=RunStatus.scheduled
        )
        record = base.evolve(
            status=RunStatus.running,
            attempt=qjob.attempt,
            started_at=base.started_at or now,
            node_id=self.node_id,
            queue_job_id=qjob.id,
            error=None,
        )
        await self.store.record_run(record)
        self._publish(RunStarted, record)
        return record

    async def _attempt(
        self, job: ScheduledJob, record: RunRecord, planned: datetime
    ) -> tuple[RunStatus, Any, BaseException | None]:
        ctx = RunContext(
            job_id=job.id,
            run_id=record.run_id,
            scheduled_for=record.scheduled_for,
            attempt=record.attempt,
            lateness_s=max(0.0, (self.clock.now() - planned).total_seconds()),
            node_id=self.node_id,
            logger=_JOB_LOG,
        )
        task: asyncio.Task[Any] = asyncio.ensure_future(job.handler.run(ctx))
        if job.timeout_s is None:
            try:
                return RunStatus.succeeded, await task, None
            except Exception as exc:
                return RunStatus.failed, None, exc
        timer = asyncio.ensure_future(self.clock.sleep(job.timeout_s))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if not task.done():
            ctx.cancelled.set()
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return RunStatus.timed_out, None, TimeoutError(f"timed out after {job.timeout_s:g}s")
        error = task.exception()
        if error is not None:
            return RunStatus.failed, None, error
        return RunStatus.succeeded, task.result(), None

    async def _finish(
        self,
        record: RunRecord,
        status: RunStatus,
        *,
        error: str | None = None,
        output_tail: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        final = record.evolve(
            status=status,
            finished_at=self.clock.now(),
            error=error,
            output_tail=output_tail,
            lease_expires_at=None,
        )
        if not await self.store.record_run(final):
            log.warning("run %s was taken over; its result was not recorded", final.run_id)
        duration_s = final.duration_s or 0.0
        if status == RunStatus.succeeded:
            self._publish(RunSucceeded, final, duration_s=duration_s)
        elif status == RunStatus.timed_out:
            self._publish(RunTimedOut, final, timeout_s=timeout_s or 0.0)
        else:
            self._publish(RunFailed, final, error=error or "", duration_s=duration_s)

    def _publish(self, cls: type[Any], record: RunRecord, **extra: Any) -> None:
        if self.events is None:
            return
        self.events.publish(
            cls(
                at=self.clock.now(),
                job_id=record.job_id,
                run_id=record.run_id,
                scheduled_for=record.scheduled_for,
                attempt=record.attempt,
                node_id=self.node_id,
                **extra,
            )
        )


def _tail(text: Any) -> str | None:
    if text is None:
        return None
    return (text if isinstance(text, str) else str(text))[-_TAIL_CHARS:]
