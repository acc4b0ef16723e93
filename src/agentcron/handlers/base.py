"""What the engine calls: the `Handler` protocol and the `RunContext` a handler receives.

Contract between the engine and every handler kind (callable, command, HTTP):

* `await handler.run(ctx)` runs one attempt. Returning means success; raising means the
  attempt failed (the engine's retry policy decides what happens next). The return value is
  a `HandlerOutcome` (the tail of the output for the run log, and any value).
* The engine enforces timeouts and cancellation by cancelling the task that awaits
  `run()`. A handler must then stop what it started before re-raising `CancelledError`:
  commands terminate their whole process tree (then kill it after a grace period), process-
  isolated callables kill their child. `ctx.cancelled` is set first, so cooperative code can
  finish cleanly.
* `handler.to_dict()` returns JSON-ready plain data from which `handler_from_dict` rebuilds an
  equivalent handler in another process, so jobs survive a restart. Handlers that cannot be
  persisted (lambdas, closures) raise `HandlerNotPersistableError` from `to_dict()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agentcron.models import occurrence_key

__all__ = [
    "Handler",
    "HandlerError",
    "HandlerNotPersistableError",
    "HandlerOutcome",
    "RunContext",
]


class HandlerError(Exception):
    """An attempt failed in a way the handler could describe (e.g. exit status 3).

    `output_tail` carries the end of the captured output for the run log.
    """

    def __init__(self, message: str, *, output_tail: str | None = None) -> None:
        super().__init__(message)
        self.output_tail = output_tail


class HandlerNotPersistableError(ValueError):
    """The handler has no importable reference, so it cannot be stored and restored."""


@dataclass(frozen=True, slots=True)
class HandlerOutcome:
    """What a successful attempt leaves for the run log."""

    output_tail: str | None = None
    value: Any = None


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """Everything a handler may know about the attempt it runs.

    `occurrence_key` is the same for every attempt of one fire (retries, and a retry on
    another node after a crash): use it to make side effects idempotent.

    `lateness_s`: how long after the fire was due this attempt started, that is after
    `scheduled_for` plus the fire's jitter (a jittered start is not late). A missed fire run
    by the misfire policy counts all the time it was missed; a retry, the earlier attempts
    and retry delays.
    """

    job_id: str
    run_id: str
    scheduled_for: datetime
    attempt: int
    lateness_s: float
    node_id: str
    logger: logging.Logger
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    progress_callback: Callable[[float], None] | None = None

    @property
    def occurrence_key(self) -> str:
        return occurrence_key(self.job_id, self.scheduled_for)

    @property
    def lateness(self) -> timedelta:
        """`lateness_s` as a `timedelta` (see the class docstring)."""
        return timedelta(seconds=self.lateness_s)

    @property
    def cancel_requested(self) -> bool:
        """True once the engine asked this attempt to stop (timeout, replace, shutdown)."""
        return self.cancelled.is_set()

    def progress(self, pct: float) -> None:
        """Report progress in percent (clamped to 0-100; NaN is ignored), from the event
        loop or a handler's thread. In a run of a `Scheduler` it is kept with the run
        (`JobView.progress`) and published as `run.progress`."""
        value = float(pct)
        if value != value:  # NaN
            return
        value = max(0.0, min(100.0, value))
        if self.progress_callback is not None:
            self.progress_callback(value)
            return
        reporter = self.__dict__.get("_reporter")  # set by `engine_context`
        if reporter is not None:
            reporter(self, value)

    if not TYPE_CHECKING:  # (mypy would otherwise accept any attribute name)

        def __getattr__(self, name: str) -> Any:
            # Called only for an attribute the instance lacks: `cancelled` of a context
            # `engine_context` built without one. The event is made when first read (most
            # runs never read it: 2 % of a fire's instructions); `setdefault` is atomic, so
            # a handler's thread and the event loop reading it at once get the same event.
            if name == "cancelled":
                return self.__dict__.setdefault("cancelled", asyncio.Event())
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


_new_object = object.__new__
_set_attribute = object.__setattr__


def engine_context(
    job_id: str,
    run_id: str,
    scheduled_for: datetime,
    attempt: int,
    lateness_s: float,
    node_id: str,
    logger: logging.Logger,
    reporter: Callable[[RunContext, float], None] | None = None,
) -> RunContext:
    """`RunContext(job_id=..., ...)` with no progress callback (`progress()` goes to
    `reporter`) and a `cancelled` event made when first read, built for the engine's hot path
    (one per fire).

    Why not the constructor: a frozen dataclass's `__init__` sets each field through
    `object.__setattr__`, which looks each one up by name. Handing the new object its whole
    `__dict__` at once gives the same object for a fraction of that (which is why
    `RunContext` has no `__slots__`: setting nine slots one by one, even through their
    descriptors, cost 1.5 % more of a fire's instructions)."""
    ctx = _new_object(RunContext)
    _set_attribute(
        ctx,
        "__dict__",
        {
            "job_id": job_id,
            "run_id": run_id,
            "scheduled_for": scheduled_for,
            "attempt": attempt,
            "lateness_s": lateness_s,
            "node_id": node_id,
            "logger": logger,
            "progress_callback": None,  # and `cancelled` when first read (`__getattr__`)
            "_reporter": reporter,  # where `progress()` goes (one shared callable)
        },
    )
    return ctx


@runtime_checkable
class Handler(Protocol):
    """One kind of work the engine can run (see the module docstring for the contract)."""

    async def run(self, ctx: RunContext) -> HandlerOutcome: ...

    def to_dict(self) -> dict[str, Any]: ...

    def describe(self) -> str:
        """A short human description (`python myagent.digest:send`, `command rsync -a ...`)."""
        ...
