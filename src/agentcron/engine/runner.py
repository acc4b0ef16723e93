"""One run: the attempt chain of one fire, with timeout, retry, cancellation and recording.

Invariants:

* The run is recorded `running` (with a lease) before the first attempt starts (by `execute`,
  or by the caller of `run`), and exactly one final status is recorded: succeeded, failed,
  timed_out or cancelled (a success that `run` returned unrecorded, by `record_succeeded`).
* A run cancelled before its task began (`ActiveRun.started` False) records `cancelled`
  when the task starts; its handler never runs.
* Timeouts race the handler against `clock.sleep(timeout_s)`, so the virtual clock drives
  them; on timeout or cancel `ctx.cancelled` is set, then the handler's task is cancelled and
  given `stop_grace_s` to clean up (kill its process tree) before it is abandoned.
* Retries happen here and only here; the run stays active (for overlap) while it waits.
* Nothing a handler does (raise anything, even an error whose `str()` raises; hang; return
  garbage; raise SystemExit) escapes `run`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agentcron.clock import Clock
from agentcron.engine.active import ActiveRun
from agentcron.error_text import describe_error, message_of, storable
from agentcron.events import (
    EventBus,
    RunCancelled,
    RunFailed,
    RunRetrying,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
)
from agentcron.handlers.base import (
    Handler,
    HandlerError,
    HandlerOutcome,
    RunContext,
    engine_context,
)
from agentcron.handlers.callable import outcome_of
from agentcron.jobs import Job
from agentcron.models import RunRecord, RunStatus
from agentcron.store.base import Store

__all__ = ["Runner", "describe_error"]

log = logging.getLogger("agentcron.engine")

_TAIL_CHARS = 4000
#: One logger for all handlers (a logger per job would live forever, for each of 100k jobs).
_JOB_LOG = logging.getLogger("agentcron.job")


def _tail(text: Any) -> str | None:
    if text is None:
        return None
    if isinstance(text, str):
        s = text
    else:
        try:
            s = str(text)
        except Exception:  # the handler's object: its __str__ may raise
            s = f"<{type(text).__name__} object: str() raised>"
    return storable(s[-_TAIL_CHARS:])


def _error_tail(error: BaseException) -> str | None:
    """The `output_tail` an error carries (a `HandlerError`'s), if it can be read: a
    handler's own exception may have one that raises (a property) or cannot be shown."""
    try:
        tail = getattr(error, "output_tail", None)
    except Exception:
        return None
    return _tail(tail)


def _escaped(exc: BaseException) -> HandlerError:
    return HandlerError(f"handler raised {type(exc).__name__}({message_of(exc)})")


async def _guarded(handler: Handler, ctx: RunContext) -> Any:
    # SystemExit / KeyboardInterrupt raised inside a task would stop the event loop itself,
    # and no other BaseException but cancellation may leave the run without a final record.
    try:
        return await handler.run(ctx)
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:
        raise _escaped(exc) from None


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _uncancel() -> None:
    """Withdraw the current task's pending cancellation requests (those of a handler that
    cancelled its own task), so that they do not disturb what the run does next."""
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _ended(
    record: RunRecord,
    status: RunStatus,
    now: datetime,
    started_at: datetime | None = None,
    error: str | None = None,
    output_tail: str | None = None,
) -> RunRecord:
    """The final record (built directly: `_replace` is slower on the hot path).
    `started_at`: when the first attempt's handler started, if known."""
    r = record
    # The fields in order: run_id, job_id, scheduled_for, status, attempt, started_at,
    # finished_at, error, output_tail, node_id, skip_reason, lease_expires_at, fence,
    # queue_job_id.
    return _new_record(
        RunRecord,
        (r[0], r[1], r[2], status, r[4], started_at or r[5], now, error, output_tail, r[9], None,
         None, r[12], r[13]),
    )  # fmt: skip


#: `RunRecord` from its 14 fields in order, without the keyword `__new__` (a Python
#: function): about 0.6 µs less per record, two records per fire. The field order is
#: pinned by `test_records_built_on_the_hot_path_equal_the_keyword_built_ones`.
_new_record = tuple.__new__
#: The statuses the hot path writes. On Python 3.11 reading a member through its enum class
#: runs a Python-level descriptor (about 1,000 instructions, 1 % of a fire): read once here.
_RUNNING = RunStatus.running
_SUCCEEDED = RunStatus.succeeded


def record_from_held(fields: tuple[Any, ...], node_id: str) -> RunRecord:
    """The final record of a run that succeeded, from the fields of it that vary from run to
    run: run_id, job_id, scheduled_for, attempt, started_at, finished_at, output_tail,
    fence and queue_job_id (`firing.HeldSuccesses`, which holds them without the record)."""
    run_id, job_id, scheduled_for, attempt, started_at, finished_at, tail, fence, queue_id = fields
    return _new_record(
        RunRecord,
        (run_id, job_id, scheduled_for, _SUCCEEDED, attempt, started_at, finished_at, None, tail,
         node_id, None, None, fence, queue_id),
    )  # fmt: skip


@dataclass(slots=True)
class _Attempt:
    status: RunStatus  # succeeded | failed | timed_out
    outcome: Any = None
    error: BaseException | None = None


class Runner:
    """Runs attempts of one job's fires; shared by every job of a scheduler."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        events: EventBus,
        node_id: str,
        lease_s: float,
        stop_grace_s: float,
        rng: random.Random,
    ) -> None:
        self.store = store
        self.clock = clock
        self.events = events
        self.node_id = node_id
        self.lease_s = lease_s
        self._lease = timedelta(seconds=lease_s)
        # The lease end of the last `now` given to `running_record`: a tick builds the
        # records of all its fires with one `now` (a datetime sum per fire, memoised).
        self._lease_from: datetime | None = None
        self._lease_until: datetime | None = None
        self.stop_grace_s = stop_grace_s
        self.rng = rng
        #: Where the handlers' `ctx.progress(pct)` goes (set by the scheduler).
        self.progress_reporter: Callable[[RunContext, float], None] | None = None

    def running_record(
        self, job: Job, run_id: str, scheduled_for: datetime, now: datetime, *, attempt: int = 1
    ) -> RunRecord:
        """The `running` record a run starts with (leased to this node from `now`)."""
        if now is not self._lease_from:
            self._lease_from = now
            self._lease_until = now + self._lease
        return _new_record(
            RunRecord,
            (run_id, job.id, scheduled_for, _RUNNING, attempt, now, None, None, None,
             self.node_id, None, self._lease_until, 0, None),
        )  # fmt: skip

    async def execute(
        self,
        job: Job,
        active: ActiveRun,
        *,
        planned: datetime,
        first_attempt: int = 1,
    ) -> RunRecord:
        """Record `active` running, then run it until a final status; return the record."""
        started = self.clock.now()
        record = self.running_record(
            job, active.run_id, active.scheduled_for, started, attempt=first_attempt
        )
        active.record = record
        try:
            await self.store.record_run(record)
        except asyncio.CancelledError:
            return await self.record_cancelled(active, record)
        self.publish_started(record)
        return await self.run(job, active, planned)

    def publish_started(self, record: RunRecord) -> None:
        self._publish(RunStarted, record)

    async def run(
        self, job: Job, active: ActiveRun, planned: datetime, *, defer_success: bool = False
    ) -> RunRecord:
        """Run the attempts of `active`, whose `running` record (`active.record`) is already
        stored, until a final status; return the final record.

        With `defer_success`, a succeeded run is returned *unrecorded* and unpublished (the
        caller hands it to `record_succeeded`, with the others that ended at the same time);
        every other final status is recorded here."""
        record = active.record
        assert record is not None
        clock = self.clock
        attempt = record.attempt
        # The running record may have been written when its tick admitted the fire; the
        # final record says when the handler really started.
        now = started = clock.now()
        try:
            if active.cancel_reason is not None:  # cancelled before its task started
                raise asyncio.CancelledError
            while True:
                lateness_s = (now - planned).total_seconds()
                ctx = active.ctx = engine_context(
                    job.id,
                    record.run_id,
                    record.scheduled_for,
                    attempt,  # (always `record.attempt`)
                    lateness_s if lateness_s > 0.0 else 0.0,
                    self.node_id,
                    _JOB_LOG,
                    self.progress_reporter,
                )
                result: _Attempt | None
                timeout_s = job._options.timeout_s  # (the slot, not the property: per fire)
                if timeout_s is None:
                    # Without a timeout the handler runs in the run's own task (one task per
                    # fire; inlined here, as this is the hot path): cancelling the run
                    # cancels the handler directly.
                    handler = job.handler
                    direct = getattr(handler, "direct", None)
                    outcome: HandlerOutcome | None
                    try:
                        if direct is None:
                            outcome = await handler.run(ctx)
                        else:  # `handler.run(ctx)` without its layer (`CallableHandler.direct`)
                            value = await direct(ctx)
                            outcome = None if value is None else outcome_of(value)
                    except asyncio.CancelledError:
                        # A cancel request, not the handler's own doing, when the engine
                        # asked (it sets `cancel_reason` first) or, in a task that is not the
                        # run's own (`run_now` runs in its caller's: `defer_success` is only
                        # for runs in their own task), whoever holds that task did.
                        if _cancelling() and (
                            active.cancel_reason is not None or not defer_success
                        ):
                            raise
                        # The handler cancelled itself (raised it, or cancelled its own
                        # task); nobody asked it to.
                        _uncancel()
                        result = _Attempt(
                            RunStatus.failed, error=HandlerError("the handler cancelled itself")
                        )
                    except Exception as exc:
                        result = _Attempt(RunStatus.failed, error=exc)
                    except BaseException as exc:  # SystemExit, KeyboardInterrupt, ...
                        result = _Attempt(RunStatus.failed, error=_escaped(exc))
                    else:
                        result = None  # succeeded
                else:
                    task: asyncio.Task[Any] = asyncio.ensure_future(_guarded(job.handler, ctx))
                    result = await self._await_with_timeout(task, ctx, timeout_s)
                    if result.status == RunStatus.succeeded:
                        outcome, result = result.outcome, None
                if result is None:
                    tail = outcome.output_tail if isinstance(outcome, HandlerOutcome) else None
                    r = record
                    # `_ended(record, succeeded, now, started, None, tail)`, built here (once
                    # per fire; the fields in `_ended`'s order), and `_tail` only for a tail.
                    final = active.record = _new_record(
                        RunRecord,
                        (r[0], r[1], r[2], _SUCCEEDED, r[4], started, clock.now(), None,
                         None if tail is None else _tail(tail), r[9], None, None, r[12], r[13]),
                    )  # fmt: skip
                    if defer_success:
                        return final
                    return await self._succeeded(active, final)
                now = clock.now()
                error = result.error
                assert error is not None
                message = describe_error(error)
                tail = _error_tail(error)
                delay = job.retry.next_delay(attempt, error, rng=self.rng)
                if delay is None:
                    return await self._failed(
                        job, active, record, result.status, message, tail, started
                    )
                self._publish(RunRetrying, record, error=message, delay_s=delay)
                record = record.evolve(error=message, output_tail=tail)
                active.record = record
                await self.store.record_run(record)
                await clock.sleep(delay)
                attempt += 1
                record = record.evolve(attempt=attempt)
                active.record = record
                await self.store.record_run(record)
                now = clock.now()
        except asyncio.CancelledError:
            return await self.record_cancelled(active, active.record or record, started)

    async def record_cancelled(
        self, active: ActiveRun, record: RunRecord, started: datetime | None = None
    ) -> RunRecord:
        """Record `active` (its last record `record`) ended `cancelled`, with its
        `cancel_reason`, and publish it; the current task's cancellation is absorbed."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        final = _ended(
            record,
            RunStatus.cancelled,
            self.clock.now(),
            started_at=started,
            error=f"cancelled: {active.cancel_reason or 'stopped'}",
        )
        if await self._finish(active, final):
            self._publish(RunCancelled, final, reason=active.cancel_reason or "stopped")
        return final

    async def _failed(
        self,
        job: Job,
        active: ActiveRun,
        record: RunRecord,
        status: RunStatus,
        message: str,
        tail: str | None,
        started: datetime,
    ) -> RunRecord:
        final = _ended(
            record, status, self.clock.now(), started_at=started, error=message, output_tail=tail
        )
        if not await self._finish(active, final):
            return final
        if status == RunStatus.timed_out:
            self._publish(RunTimedOut, final, timeout_s=job.timeout_s or 0.0)
        else:
            self._publish(RunFailed, final, error=message, duration_s=final.duration_s or 0.0)
        return final

    async def _await_with_timeout(
        self, task: asyncio.Task[Any], ctx: RunContext, timeout_s: float
    ) -> _Attempt:
        timer = asyncio.ensure_future(self.clock.sleep(timeout_s))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self._stop(task, ctx)
            raise
        finally:
            timer.cancel()
        if not task.done():
            await self._stop(task, ctx)
            return _Attempt(
                RunStatus.timed_out, error=TimeoutError(f"timed out after {timeout_s:g}s")
            )
        if task.cancelled():
            return _Attempt(RunStatus.failed, error=HandlerError("the handler cancelled itself"))
        error = task.exception()
        if error is not None:
            return _Attempt(RunStatus.failed, error=error)
        return _Attempt(RunStatus.succeeded, outcome=task.result())

    async def _stop(self, task: asyncio.Task[Any], ctx: RunContext) -> None:
        """Cancel the handler and give it `stop_grace_s` to clean up, then abandon it."""
        ctx.cancelled.set()
        task.cancel()
        grace = asyncio.ensure_future(self.clock.sleep(self.stop_grace_s))
        try:
            await asyncio.wait({task, grace}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            grace.cancel()
        if task.done():
            _retrieve(task)
        else:
            log.error("handler of %s ignored cancellation; abandoning it", ctx.job_id)
            task.add_done_callback(_retrieve)

    async def _succeeded(self, active: ActiveRun, final: RunRecord) -> RunRecord:
        if await self._finish(active, final) and self.events.subscriber_count:
            self._publish(RunSucceeded, final, duration_s=final.duration_s or 0.0)
        return final

    async def record_succeeded(self, finished: Sequence[ActiveRun]) -> None:
        """Record the succeeded runs that `run(defer_success=True)` returned, in one store
        call, then publish their `RunSucceeded` events (as `run` does for one)."""
        await self.record_finished([a.record for a in finished if not a.disowned and a.record])

    async def record_finished(self, runs: list[RunRecord]) -> None:
        """Write the final records `runs` in one store call, then publish their
        `RunSucceeded` events: `record_succeeded` without the runs themselves."""
        try:
            recorded = await self.store.record_runs(runs)
        except Exception:  # the store is down: the runs' leases will expire -> interrupted
            log.exception("could not record the end of %d run(s)", len(runs))
        else:
            if not all(recorded):  # (one C loop for the usual case, none refused)
                for run, ok in zip(runs, recorded, strict=True):
                    if not ok:
                        log.warning(
                            "run %s was taken over; its result was not recorded", run.run_id
                        )
        if self.events.subscriber_count:
            for final in runs:
                self._publish(RunSucceeded, final, duration_s=final.duration_s or 0.0)

    async def _finish(self, active: ActiveRun, final: RunRecord) -> bool:
        """Record the end of `active`; False, recording nothing, when it is `disowned` (its
        end is not this engine's to record or publish)."""
        active.record = final
        if active.disowned:
            return False  # another node owns it (fencing would refuse us), or it was abandoned
        try:
            if not await self.store.record_run(final):
                log.warning("run %s was taken over; its result was not recorded", final.run_id)
        except Exception:  # the store is down: the run's lease will expire -> interrupted
            log.exception("could not record the end of run %s", final.run_id)
        return True

    async def abandon(self, active: ActiveRun, grace_s: float) -> None:
        """Record `active` `cancelled` now, without its handler, which ignored cancellation
        for `grace_s`; the run is `disowned` from here on, so whatever the handler does
        later is not recorded (`Firing._abandon`)."""
        record = active.record
        reason = active.cancel_reason or "stopped"
        active.disowned = True
        if record is None or record.status != RunStatus.running:
            return  # never recorded running (or already final): nothing to close
        final = _ended(
            record,
            RunStatus.cancelled,
            self.clock.now(),
            error=f"cancelled: {reason}; the handler ignored cancellation for {grace_s:g} s"
            " and was abandoned",
        )
        active.record = final
        try:
            await self.store.record_run(final)
        except Exception:  # the store is down: the run's lease will expire -> interrupted
            log.exception("could not record the end of run %s", final.run_id)
        self._publish(RunCancelled, final, reason=reason)

    def _publish(self, cls: type[Any], record: RunRecord, **extra: Any) -> None:
        if not self.events.subscriber_count:
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
