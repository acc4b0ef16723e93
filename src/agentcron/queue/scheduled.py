"""Scheduled jobs on queues: the engine enqueues a fire, a queue worker runs it.

A job added with ``queue="name"`` is not run inline by the `Scheduler`: give the scheduler
``dispatch=queue_dispatch(queues)`` and, at the fire time, the fire is enqueued on that
queue under its occurrence key (so a fire is enqueued once, whichever node fires it), and
its run is recorded ``scheduled`` with the queue job id. A worker whose handler is a
`ScheduledJobRunner` runs the job's handler and writes the same run record as it goes:
``running`` (attempt n), then ``succeeded``, ``failed`` or ``timed_out``.

Retries follow the job's `Retry` policy, applied once, by the queue: the queue job gets the
policy's ``max_attempts`` and a custom backoff that asks the policy for each delay.

A worker that dies does not leave its run ``running`` for ever. The ``running`` record holds
a lease (``lease_s``) that the runner renews while the attempt runs, so the scheduler's lease
sweep (`Store.interrupt_expired`) marks the run ``interrupted`` when the worker is gone. When
the queue's stalled-job recovery hands the job to another worker, that claim is the next
attempt (the queue counts it): the runner marks the dead attempt's record ``interrupted``
(unless the sweep did), then asks the job's `Retry` policy, as the engine does for an
interrupted inline run (with `RunInterruptedError`). If the policy allows another attempt,
the attempt runs (after the policy's delay) under a new run record of the same fire
(``attempt`` n + 1), so the history keeps the ``interrupted`` attempt; if not, it does not run
and the queue job fails. A claim of a fire whose run already ended (its worker died after
recording it, before the queue heard) does not run it again. ::

    queue = open_queue("sqlite:///data/scheduler.db", "agent")
    sched = Scheduler(store, dispatch=queue_dispatch({"agent": queue}))
    runner = ScheduledJobRunner(store, lease_s=30)
    worker = queue.worker(runner, backoff_strategy=runner.backoff_strategy)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from agentcron.clock import Clock, SystemClock
from agentcron.engine.errors import RunInterruptedError
from agentcron.error_text import describe_error
from agentcron.events import (
    EventBus,
    RunFailed,
    RunInterrupted,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
)
from agentcron.handlers.base import HandlerOutcome, RunContext
from agentcron.jobs import Job as ScheduledJob
from agentcron.jobs import job_from_definition
from agentcron.models import RunQuery, RunRecord, RunStatus, new_run_id
from agentcron.queue.base import Backoff, Job, Queue, QueueError
from agentcron.queue.dispatch import dispatch_to_queue
from agentcron.queue.worker import UnrecoverableError
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_join

__all__ = ["RunTakenOverError", "ScheduledJobRunner", "queue_dispatch"]

log = logging.getLogger("agentcron.queue")
_JOB_LOG = logging.getLogger("agentcron.job")
_TAIL_CHARS = 4000
#: How many run records of one fire a claim reads to find its latest attempt (one per
#: interrupted attempt, so a handful at most).
_FIRE_ROWS = 100


class RunTakenOverError(Exception):
    """This worker lost the lease of the run it was running: the run was taken over (marked
    ``interrupted`` by a lease sweep, or by the worker the queue handed the job to). The
    attempt was cancelled and its outcome not recorded."""


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
    `Retry` policy. `lease_s`: the lease of the ``running`` record, renewed every
    ``lease_s / 3`` while an attempt runs; a run whose worker died is found ``interrupted``
    by the scheduler's lease sweep that long after its last renewal.
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
        lease_s: float = 30.0,
    ) -> None:
        if not lease_s > 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s!r}")
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.events = events
        self.node_id = node_id or f"{socket.gethostname()}:{os.getpid()}"
        self.jobs = jobs
        self.rng = rng or random.Random()
        self.lease_s = lease_s
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
        begun = await self._begin(job, run_id, scheduled_for, qjob)
        if isinstance(begun, dict):
            return begun
        record, delay = begun
        async with self._leased(record) as lost:
            if delay > 0:
                await self._wait(delay, lost)
                record = record.evolve(error=None)
                await self._record_ours(record)
            self._publish(RunStarted, record)
            status, outcome, error = await self._attempt(job, record, scheduled_for, lost)
        if status == RunStatus.succeeded:
            tail = outcome.output_tail if isinstance(outcome, HandlerOutcome) else None
            await self._finish(record, RunStatus.succeeded, output_tail=_tail(tail))
            return {"run_id": record.run_id, "status": "succeeded"}
        assert error is not None
        message = f"{type(error).__name__}: {error}"
        retry_s = job.retry.next_delay(qjob.attempt, error, rng=self.rng)
        if retry_s is None or qjob.attempt >= qjob.attempts:
            await self._finish(record, status, error=message, timeout_s=job.timeout_s)
            raise UnrecoverableError(message)
        self._delays[qjob.id] = retry_s
        await self.store.record_run(
            record.evolve(status=RunStatus.scheduled, error=message, lease_expires_at=None)
        )
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

    # -- starting an attempt ------------------------------------------------------------
    async def _begin(
        self, job: ScheduledJob, run_id: str, scheduled_for: datetime, qjob: Job
    ) -> tuple[RunRecord, float] | dict[str, Any]:
        """The `running` record (leased to this node) of the attempt `qjob` starts, and the
        seconds to wait before running it; or, when the fire must not run again, the result
        to complete the queue job with (or `UnrecoverableError` to fail it)."""
        latest = await self.store.get_run(run_id)
        if latest is None or latest.status != RunStatus.scheduled:
            latest = await self._latest(job.id, run_id, scheduled_for, qjob, latest)
        now = self.clock.now()
        if latest is None or latest.status == RunStatus.scheduled:
            base = latest or RunRecord(
                run_id=run_id,
                job_id=job.id,
                scheduled_for=scheduled_for,
                status=RunStatus.scheduled,
            )
            return await self._running(base, qjob, now), 0.0
        if latest.status.is_final and latest.status != RunStatus.interrupted:
            if qjob.attempt > latest.attempt:
                # Its worker recorded the end and died before the queue heard: done already.
                return self._ended(latest)
            # A new chain of attempts (a dead-lettered job retried by hand): run it anew.
            return await self._running(latest, qjob, now), 0.0
        if latest.status == RunStatus.running:
            # The queue handed the job on: the worker of that attempt lost it (died, hung).
            latest = await self._interrupt(latest, now)
        why = RunInterruptedError(f"run {latest.run_id} was interrupted (node {latest.node_id})")
        delay: float | None = 0.0  # (a chain retried by hand: the policy's count starts anew)
        if qjob.attempt > 1:
            delay = (
                job.retry.next_delay(qjob.attempt - 1, why, rng=self.rng)
                if qjob.attempt <= qjob.attempts
                else None
            )
        if delay is None:
            raise UnrecoverableError(
                f"{latest.error or 'interrupted'}; the job's retry policy allows no"
                f" attempt {qjob.attempt}, so the run ends interrupted"
            )
        record = RunRecord(
            run_id=new_run_id(),
            job_id=job.id,
            scheduled_for=scheduled_for,
            status=RunStatus.running,
            attempt=qjob.attempt,
            started_at=now,
            node_id=self.node_id,
            lease_expires_at=now + timedelta(seconds=self.lease_s),
            queue_job_id=qjob.id,
            error=f"retrying after {describe_error(why)}" if delay else None,
        )
        await self.store.record_run(record)
        return record, delay

    async def _latest(
        self,
        job_id: str,
        run_id: str,
        scheduled_for: datetime,
        qjob: Job,
        payload_run: RunRecord | None,
    ) -> RunRecord | None:
        """The newest run record of this fire's chain of queue attempts: the dispatched run
        and the records of later attempts (after an interrupted one) with this queue job."""
        rows = await self.store.list_runs(
            RunQuery(
                job_id=job_id,
                since=scheduled_for,
                until=scheduled_for + timedelta(microseconds=1),
                limit=_FIRE_ROWS,
            )
        )
        chain = [r for r in rows if r.run_id == run_id or r.queue_job_id == qjob.id]
        if payload_run is not None and all(r.run_id != run_id for r in chain):
            chain.append(payload_run)
        if not chain:
            return None
        waiting = [r for r in chain if r.status == RunStatus.scheduled]
        if waiting:  # (a retry after a failed attempt, or one the engine dispatched again)
            chain = waiting
        return max(chain, key=lambda r: (r.attempt, r.started_at or r.scheduled_for))

    async def _running(self, base: RunRecord, qjob: Job, now: datetime) -> RunRecord:
        record = base.evolve(
            status=RunStatus.running,
            attempt=qjob.attempt,
            started_at=base.started_at or now,
            finished_at=None,
            node_id=self.node_id,
            queue_job_id=qjob.id,
            error=None,
            output_tail=None,
            skip_reason=None,
            lease_expires_at=now + timedelta(seconds=self.lease_s),
        )
        await self._record_ours(record)
        return record

    async def _interrupt(self, run: RunRecord, now: datetime) -> RunRecord:
        """Record the attempt of a worker that lost its queue job `interrupted`, raising the
        fence (so that worker, if it lives on, cannot record its result), as the scheduler's
        lease sweep does."""
        taken = run.interrupted(now)
        if await self.store.record_run(taken):
            log.warning(
                "run %s (attempt %d) of job %s was interrupted: its worker (%s) lost its queue job",
                run.run_id,
                run.attempt,
                run.job_id,
                run.node_id or "unknown",
            )
            self._publish(RunInterrupted, taken, node_id=run.node_id)
            return taken
        stored = await self.store.get_run(run.run_id)  # a lease sweep took it first
        return stored if stored is not None else taken

    @staticmethod
    def _ended(run: RunRecord) -> dict[str, Any]:
        if run.status == RunStatus.succeeded:
            return {"run_id": run.run_id, "status": "succeeded"}
        raise UnrecoverableError(
            f"run {run.run_id} already ended {run.status}" + (f": {run.error}" if run.error else "")
        )

    # -- the lease ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _leased(self, record: RunRecord) -> AsyncIterator[asyncio.Future[None]]:
        """Renew `record`'s lease while the block runs; the future it yields is done when
        the lease is lost (the run was taken over)."""
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        renewer = asyncio.ensure_future(self._renew(record, lost))
        try:
            yield lost
        finally:
            await cancel_and_join(renewer)

    async def _renew(self, record: RunRecord, lost: asyncio.Future[None]) -> None:
        while True:
            await self.clock.sleep(self.lease_s / 3)
            until = self.clock.now() + timedelta(seconds=self.lease_s)
            try:
                if await self.store.renew_lease(
                    record.run_id, self.node_id, record.fence, until=until
                ):
                    continue
                stored = await self.store.get_run(record.run_id)
                if stored is None:  # the store lost it: write it back, with its lease
                    await self.store.record_run(record.evolve(lease_expires_at=until))
                    continue
            except Exception as exc:  # the store is down: the lease may expire meanwhile
                log.warning("could not renew the lease of run %s: %s", record.run_id, exc)
                continue
            if (
                stored.status == RunStatus.running
                and stored.node_id == self.node_id
                and stored.fence == record.fence
            ):
                continue  # (refused before the record landed: still ours)
            log.warning(
                "run %s of job %s was taken over (%s); its attempt is cancelled",
                record.run_id,
                record.job_id,
                stored.status,
            )
            if not lost.done():
                lost.set_result(None)
            return

    async def _wait(self, delay: float, lost: asyncio.Future[None]) -> None:
        timer = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait({timer, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if lost.done():
            raise RunTakenOverError("the run was taken over before its retry started")

    async def _record_ours(self, record: RunRecord) -> None:
        if not await self.store.record_run(record):
            raise RunTakenOverError(f"run {record.run_id} was taken over")

    async def _attempt(
        self,
        job: ScheduledJob,
        record: RunRecord,
        planned: datetime,
        lost: asyncio.Future[None],
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
        waits: set[asyncio.Future[Any]] = {task, lost}
        timer = None
        if job.timeout_s is not None:
            timer = asyncio.ensure_future(self.clock.sleep(job.timeout_s))
            waits.add(timer)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            ctx.cancelled.set()
            task.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not task.done():
            ctx.cancelled.set()
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            if lost.done():
                raise RunTakenOverError(
                    f"run {record.run_id} was taken over while this worker ran it"
                )
            return RunStatus.timed_out, None, TimeoutError(f"timed out after {job.timeout_s:g}s")
        error = task.exception()
        if error is not None:
            if not isinstance(error, Exception):
                raise error
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
                **{"node_id": self.node_id, **extra},
            )
        )


def _tail(text: Any) -> str | None:
    if text is None:
        return None
    return (text if isinstance(text, str) else str(text))[-_TAIL_CHARS:]
